# Camera boards: frames decoded in memory into the one redemption path (decode, frame header, the worker).
