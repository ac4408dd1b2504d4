// Placeholder translation unit until the reference kernels land.
