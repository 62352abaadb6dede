# Hexiao scanner firmware: the package version shared by status messages and the build.
VERSION = "0.1.0"
