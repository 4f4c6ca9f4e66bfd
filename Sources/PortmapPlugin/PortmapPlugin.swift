// PortmapPlugin module
