"""The kernel's interfaces as files: one reader per /proc (and /sys) file."""
