// HostLocalPlugin module
