# Tests for the Hexiao gateway, firmware and tools.
