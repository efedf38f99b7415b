"""Files: the names of everything raygex writes (:mod:`~raygex.files.names`), atomic writes and hashes
(:mod:`~raygex.files.fileio`), local folders and object stores behind one interface (:mod:`~raygex.files.storage`)
and the one-driver lock (:mod:`~raygex.files.lock`)."""
