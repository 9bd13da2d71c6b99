"""Reading and writing images, videos and meshes."""
