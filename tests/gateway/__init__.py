# Gateway tests.
