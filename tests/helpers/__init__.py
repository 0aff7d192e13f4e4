"""Helpers the tests share: structures (`structures`), LAMMPS runs (`lammps`) and test
models (`models`). Imported as `helpers.X` (pytest puts tests/ on the path)."""
