"""Hub integration (push, pull, from_pretrained, cards): built on the core, the converters and the cards."""
