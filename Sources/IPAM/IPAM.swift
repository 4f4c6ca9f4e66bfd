// IPAM module
