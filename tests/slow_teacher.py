"""A deliberately slow ASE calculator (EMT plus a pause), so a test can kill a labelling run
half-way: used through the teacher spec `ase:slow_teacher:SlowEMT`."""

import time

from ase.calculators.emt import EMT


class SlowEMT(EMT):
    def calculate(self, *args, **kwargs):
        time.sleep(0.05)
        super().calculate(*args, **kwargs)
