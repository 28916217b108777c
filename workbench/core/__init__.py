"""The Qt-free engine: graph, build, cells, blocks, tasks, training, probes, decoding and the project file.

Nothing in this package imports Qt (a test enforces it); GUI and CLI both call into it.
"""
