"""The file format: the torch-free header reader (:mod:`.spec`), the encodings' layouts (:mod:`.encodings`),
atomic writes (:mod:`.atomic`) and the tensor layer (:mod:`.tensors`: read/write, bit packing, checksums).

This package's ``__init__`` imports nothing so that ``ticketfmt.format.spec`` stays torch-free.
"""
