// BridgePlugin module
