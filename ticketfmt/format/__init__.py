"""The file format: the torch-free header reader (:mod:`.spec`), the encodings (:mod:`.encodings`: the
interface and its registry; :mod:`.packed`, :mod:`.dense`), atomic writes (:mod:`.atomic`) and the tensor
layer (:mod:`.tensors`: read/write, bit packing, checksums, the encoding dispatch).

This package's ``__init__`` imports only the encodings, which import no torch, so that
``ticketfmt.format.spec`` stays torch-free and knows every encoding. A new encoding is one
module plus its import line here.
"""

from ticketfmt.format import packed, dense  # noqa: F401  (register the built-in encodings, packed first: the default)
