int quiver_kernels_placeholder(void){return 0;}
