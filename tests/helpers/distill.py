"""The miniature distill job the distill tests run (the `lammps:` SW teacher by default)."""

from mlff_tools.distill import DistillConfig

SW_TEACHER = "lammps:pair_style sw; pair_coeff * * Si.sw Si"


def miniature(out, **overrides):
    settings = dict(output=str(out), teacher=SW_TEACHER, structure="Si",
                    temperatures=(300.0, 1500.0), frames=30, cutoff=4.0, epochs=20,
                    epochs_per_round=5, rounds=1, al_steps=200, al_candidates=3, al_keep=2,
                    nve_ps=0.3, stability_ps=0.3, rdf_ps=1.0, rdf_frames=20, progress=False)
    settings.update(overrides)
    return DistillConfig(**settings)
