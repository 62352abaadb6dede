# `make check-fresh`: install and run the gateway in a freshly debootstrapped Debian root (amd64, arm64).
