// Filled in by the MPI work.
