// CNI module
