int quiver_kernels_placeholder(void);
