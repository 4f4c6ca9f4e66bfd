// LoopbackPlugin module
