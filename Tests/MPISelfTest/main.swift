print("mpi-selftest: build with --traits MPI")
