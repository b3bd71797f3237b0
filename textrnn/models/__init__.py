"""The networks and what they do alone: encoder, modules, classifier, language model, generation, prediction,
checkpoint folders (save, load, migrate, card), pretrained vectors and LM transfer. Imports core and data."""
