"""The bottom layer: errors, the configuration dataclasses, and the runtime (device, signals, ranks, faults).

Imports nothing else of textrnn."""
