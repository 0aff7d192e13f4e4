/* ----------------------------------------------------------------------
   mlff: pair_style mlff (see pair_mlff.h and docs/design.md for the contract).

   compute() is three steps: build the graph of edges shorter than the model
   cutoff from LAMMPS's full neighbour list (centres are owned atoms,
   neighbours may be ghosts), run the model, and scatter its edge gradients
   into forces (ghost forces are reverse-communicated, newton pair on),
   energy and virial. With `graph host` the first and last steps are loops
   here; with `graph device` (the default on a GPU) the flattened neighbour
   list goes to the model's device and all three steps run there.
------------------------------------------------------------------------- */

#include "pair_mlff.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include "mlff_elements.h"
#include "mlff_model.h"

#include <mpi.h>

#include <cmath>
#include <cstring>

using namespace LAMMPS_NS;

static constexpr double OVERLAP_SQ = MLFF::OVERLAP_DISTANCE * MLFF::OVERLAP_DISTANCE;

/* ---------------------------------------------------------------------- */

PairMLFF::PairMLFF(LAMMPS *lmp) :
    Pair(lmp), graph(new MLFF::Graph), cutoff(0.0), graph_on_device(false), kokkos_style(false), kokkos_on_gpu(false),
    profile(MLFF::Model::profile_requested()), profile_phases{"graph", "model", "scatter"},
    phase_seconds{0.0, 0.0, 0.0}, profiled_calls(0), last_nedges(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;    // the virial is summed from edge forces
  centroidstressflag = CENTROID_NOTAVAIL;
}

/* ---------------------------------------------------------------------- */

PairMLFF::~PairMLFF()
{
  if (model && comm->me == 0) {
    const std::string report = model->profile_report();
    if (!report.empty()) utils::logmesg(lmp, report);
    if (profiled_calls > 0) {
      const double n = static_cast<double>(profiled_calls);
      const std::string where =
          kokkos_style ? "" : "graph host, " + model->device_name() + ", ";
      utils::logmesg(lmp,
                     "{} profile ({}{} calls, {} edges in the last), ms per call: {} {:.3f}, "
                     "{} {:.3f}, {} {:.3f}\n",
                     style_name(), where, profiled_calls, last_nedges, profile_phases[0],
                     1e3 * phase_seconds[0] / n, profile_phases[1], 1e3 * phase_seconds[1] / n,
                     profile_phases[2], 1e3 * phase_seconds[2] / n);
    }
  }
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

/* ----------------------------------------------------------------------
   energy, forces and virial of the owned atoms
------------------------------------------------------------------------- */

void PairMLFF::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  if (graph_on_device) {
    compute_on_device();
    return;
  }

  profile_mark(-1);
  build_graph();
  profile_mark(0);

  MLFF::Result result;
  try {
    result = model->compute(*graph);
  } catch (MLFF::ModelError &e) {
    error->one(FLERR, "pair_style mlff: {}", e.what());
  }
  profile_mark(1);
  if (result.first_bad_atom >= 0) stop_non_finite_energy(result.first_bad_atom);
  if (result.first_bad_edge >= 0) {
    const double *r = graph->edge_vec.data() + 3 * result.first_bad_edge;
    stop_non_finite_force(graph->centre[result.first_bad_edge],
                          graph->neighbour[result.first_bad_edge],
                          std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]));
  }

  scatter(result.atom_energy, result.edge_grad);
  profile_mark(2);
  last_nedges = graph->nedges;
}

void PairMLFF::profile_mark(int phase)
{
  if (!profile) return;
  profile_fence();
  const auto now = std::chrono::steady_clock::now();
  if (phase >= 0) phase_seconds[phase] += std::chrono::duration<double>(now - phase_start).count();
  if (phase == 2) ++profiled_calls;
  phase_start = now;
}

/* ----------------------------------------------------------------------
   the graph: every owned atom of a mapped type is a centre; its edges go to
   every neighbour (owned or ghost) of a mapped type closer than the cutoff
------------------------------------------------------------------------- */

void PairMLFF::build_graph()
{
  double **x = atom->x;
  int *type = atom->type;
  const int nall = atom->nlocal + atom->nghost;
  const double cutsq_model = cutoff * cutoff;

  graph->species.resize(nall);
  for (int i = 0; i < nall; ++i) graph->species[i] = std::max(type_to_species[type[i]], 0);

  // positions through one pointer and the centre's in locals: the edge vectors' stores
  // could alias x for all the compiler knows, which would reload them for every candidate
  const double *xs = nall > 0 ? &x[0][0] : nullptr;
  const int *map = type_to_species.data();
  const int inum = list->inum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  std::size_t candidates = 0;
  for (int ii = 0; ii < inum; ++ii) candidates += numneigh[ilist[ii]];
  graph->reserve_edges(candidates);
  int64_t *centre = graph->centre.data();
  int64_t *neighbour = graph->neighbour.data();
  double *edge_vec = graph->edge_vec.data();
  int64_t n = 0;
  for (int ii = 0; ii < inum; ++ii) {
    const int i = ilist[ii];
    if (map[type[i]] < 0) continue;
    const int *jlist = firstneigh[i];
    const int jnum = numneigh[i];
    const double xi = xs[3 * i], yi = xs[3 * i + 1], zi = xs[3 * i + 2];
    for (int jj = 0; jj < jnum; ++jj) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = xs[3 * j] - xi;
      const double dy = xs[3 * j + 1] - yi;
      const double dz = xs[3 * j + 2] - zi;
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq >= cutsq_model || map[type[j]] < 0) continue;    // NaN passes: reported later
      if (rsq < OVERLAP_SQ) stop_overlap(i, j, std::sqrt(rsq));
      centre[n] = i;
      neighbour[n] = j;
      edge_vec[3 * n] = dx;
      edge_vec[3 * n + 1] = dy;
      edge_vec[3 * n + 2] = dz;
      ++n;
    }
  }
  graph->nedges = n;
}

/* ----------------------------------------------------------------------
   contract: F_i += g, F_j -= g, W -= edge_vec (outer) g; energy of owned atoms
------------------------------------------------------------------------- */

void PairMLFF::scatter(const double *atom_energy, const double *edge_grad)
{
  double **f = atom->f;
  int *type = atom->type;

  if (eflag_either) {
    for (int ii = 0; ii < list->inum; ++ii) {
      const int i = list->ilist[ii];
      if (type_to_species[type[i]] < 0) continue;
      if (eflag_global) eng_vdwl += atom_energy[i];
      if (eflag_atom) eatom[i] += atom_energy[i];
    }
  }

  const int64_t nedges = graph->nedges;
  for (int64_t e = 0; e < nedges; ++e) {
    const int i = graph->centre[e];
    const int j = graph->neighbour[e];
    const double *g = edge_grad + 3 * e;
    f[i][0] += g[0];
    f[i][1] += g[1];
    f[i][2] += g[2];
    f[j][0] -= g[0];
    f[j][1] -= g[1];
    f[j][2] -= g[2];

    if (vflag_either) {
      const double *r = graph->edge_vec.data() + 3 * e;
      const double w[6] = {-r[0] * g[0], -r[1] * g[1], -r[2] * g[2],
                           -r[0] * g[1], -r[0] * g[2], -r[1] * g[2]};
      if (vflag_global)
        for (int k = 0; k < 6; ++k) virial[k] += w[k];
      if (vflag_atom)
        for (int k = 0; k < 6; ++k) {
          vatom[i][k] += 0.5 * w[k];
          vatom[j][k] += 0.5 * w[k];
        }
    }
  }
}

/* ----------------------------------------------------------------------
   `graph device`: flatten the neighbour list (centres of mapped types), let
   the model's device build edges and scatter, then add what comes back
------------------------------------------------------------------------- */

void PairMLFF::compute_on_device()
{
  int *type = atom->type;
  const int nall = atom->nlocal + atom->nghost;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  centres.clear();
  offsets.assign(1, 0);
  neighbours.clear();
  for (int ii = 0; ii < list->inum; ++ii) {
    const int i = list->ilist[ii];
    if (type_to_species[type[i]] < 0) continue;
    const int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; ++jj) neighbours.push_back(jlist[jj] & NEIGHMASK);
    centres.push_back(i);
    offsets.push_back(static_cast<int>(neighbours.size()));
  }

  MLFF::NeighbourInput input;
  input.x = nall > 0 ? &atom->x[0][0] : nullptr;
  input.type = type;
  input.nall = nall;
  input.centre = centres.data();
  input.offset = offsets.data();
  input.neighbour = neighbours.data();
  input.ncentre = static_cast<int>(centres.size());
  input.virial = vflag_global != 0;
  input.atom_virial = vflag_atom != 0;

  MLFF::NeighbourOutput out;
  try {
    out = model->compute(input);
  } catch (MLFF::ModelError &e) {
    error->one(FLERR, "pair_style mlff: {}", e.what());
  }
  check_device_result(out);

  double **f = atom->f;
  for (int i = 0; i < nall; ++i)
    for (int k = 0; k < 3; ++k) f[i][k] += out.force[3 * i + k];
  if (eflag_global) eng_vdwl += out.energy;
  if (eflag_atom)
    for (std::size_t c = 0; c < centres.size(); ++c) eatom[centres[c]] += out.centre_energy[c];
  if (vflag_global)
    for (int k = 0; k < 6; ++k) virial[k] += out.virial[k];
  if (vflag_atom)
    for (int i = 0; i < nall; ++i)
      for (int k = 0; k < 6; ++k) vatom[i][k] += out.atom_virial[6 * i + k];
}

/* ---------------------------------------------------------------------- */

void PairMLFF::check_device_result(const MLFF::NeighbourOutput &out)
{
  if (out.overlap_i >= 0) stop_overlap(out.overlap_i, out.overlap_j, out.overlap_distance);
  if (out.bad_atom >= 0) stop_non_finite_energy(out.bad_atom);
  if (out.bad_edge_i >= 0) stop_non_finite_force(out.bad_edge_i, out.bad_edge_j, out.bad_edge_distance);
}

/* ----------------------------------------------------------------------
   the run-time errors of every path (host, device, Kokkos), by local index
------------------------------------------------------------------------- */

void PairMLFF::stop_overlap(int i, int j, double distance)
{
  error->one(FLERR,
             "pair_style {}: atoms {} and {} are on top of each other (distance {:.3g} A) at "
             "step {}; fix the structure, e.g. with delete_atoms overlap",
             style_name(), atom->tag[i], atom->tag[j], distance, update->ntimestep);
}

void PairMLFF::stop_non_finite_energy(int i)
{
  error->one(FLERR,
             "pair_style {}: the model returned a non-finite energy at step {} for atom {} (type "
             "{}); check the input structure for NaN positions or overlapping atoms",
             style_name(), update->ntimestep, atom->tag[i], atom->type[i]);
}

void PairMLFF::stop_non_finite_force(int i, int j, double distance)
{
  error->one(FLERR,
             "pair_style {}: the model returned a non-finite force at step {} between atoms {} "
             "and {} (distance {:.6g} A); check for NaN positions or overlapping atoms",
             style_name(), update->ntimestep, atom->tag[i], atom->tag[j], distance);
}

/* ----------------------------------------------------------------------
   pair_style mlff model.pt [device cpu|cuda|auto] [threads N] [graph host|device]
                            [evaluator auto|torch|native]
------------------------------------------------------------------------- */

void PairMLFF::settings(int narg, char **arg)
{
  if (narg < 1)
    error->all(FLERR, "Illegal pair_style mlff command: expected `pair_style mlff model.pt "
                      "[device cpu|cuda|auto] [threads N] [graph host|device] "
                      "[evaluator auto|torch|native]`");
  check_units();

  std::string device = "default";
  std::string graph_where = "default";
  std::string evaluator = "auto";
  int nthreads = 1;
  for (int iarg = 1; iarg < narg; iarg += 2) {
    const std::string key = arg[iarg];
    if (iarg + 1 >= narg)
      error->all(FLERR, "pair_style mlff: keyword `{}` needs a value", key);
    const std::string value = arg[iarg + 1];
    if (key == "device") {
      if (value != "cpu" && value != "cuda" && value != "auto")
        error->all(FLERR, "pair_style mlff: device `{}` is not one of cpu, cuda, auto", value);
      device = value;
    } else if (key == "threads") {
      nthreads = utils::inumeric(FLERR, value, false, lmp);
      if (nthreads < 1)
        error->all(FLERR, "pair_style mlff: threads must be at least 1, got {}", value);
    } else if (key == "graph") {
      if (value != "host" && value != "device")
        error->all(FLERR, "pair_style mlff: graph `{}` is not one of host, device", value);
      graph_where = value;
    } else if (key == "evaluator") {
      if (value != "auto" && value != "torch" && value != "native")
        error->all(FLERR, "pair_style mlff: evaluator `{}` is not one of auto, torch, native",
                   value);
      evaluator = value;
    } else {
      error->all(FLERR,
                 "pair_style mlff: unknown keyword `{}`; known keywords: device, threads, graph, "
                 "evaluator",
                 key);
    }
  }

  // with several ranks per node, each picks a GPU by its rank within the node
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
  if (evaluator == "native" && !kokkos_style) {
    if (graph_where == "device")
      error->all(FLERR, "pair_style mlff: `evaluator native` computes graphs built on the host; "
                        "remove `graph device`");
  }
  MLFF::DeviceRequest request;
  request.kind = device;
  request.evaluator = evaluator;
  // auto: the native evaluator where it is tested and measured as the faster, a student's .pt
  // on the host graph and mlff/kk on a host backend (OpenMP, Serial); torch under mlff/kk on
  // a GPU until a GPU has measured its native kernel (chosen there by `evaluator native`)
  if (evaluator == "auto" && (kokkos_on_gpu || graph_where == "device"))
    request.evaluator = "torch";
  MPI_Comm_rank(node, &request.node_local_rank);
  MPI_Comm_free(&node);
  choose_device(request);

  model_path = arg[0];
  try {
    MLFF::Model::set_num_threads(nthreads);
    model = std::make_unique<MLFF::Model>(model_path, request);
  } catch (MLFF::ModelError &e) {
    error->all(FLERR, "pair_style mlff: {}", e.what());
  }
  cutoff = model->metadata().cutoff;
  const std::string malloc_note = MLFF::Model::keep_freed_memory();
  if (comm->me == 0 && !malloc_note.empty()) utils::logmesg(lmp, malloc_note + "\n");
  // on a GPU the graph is built there (no edge list crosses the bus); on a CPU both work
  const bool on_gpu = model->device_name().rfind("cuda", 0) == 0;
  graph_on_device = graph_where == "device" || (graph_where == "default" && on_gpu);
  if (evaluator == "native" && on_gpu && !kokkos_style)
    error->all(FLERR, "pair_style mlff: `evaluator native` computes on the CPU here; on a GPU "
                      "run it as pair_style mlff/kk (-sf kk), or use `device cpu`");

  if (comm->me == 0) {
    const auto &meta = model->metadata();
    utils::logmesg(lmp,
                   "pair_style {}: model '{}' species {} cutoff {} A {} on {}, {} thread(s), "
                   "graph built {}{}\n",
                   style_name(), model_path,
                   utils::join_words(meta.species, " "), meta.cutoff, meta.dtype,
                   model->device_name(), nthreads,
                   kokkos_style ? "by Kokkos kernels" : (graph_on_device ? "on the device"
                                                                          : "on the host"),
                   model->evaluator() == "native" ? ", computed by the native evaluator" : "");
    if (!model->evaluator_note().empty())
      error->warning(FLERR, "pair_style {}: {}", style_name(), model->evaluator_note());
    // Inductor writes a package's CPU code for a thread count: other counts run slower
    if (!on_gpu && meta.target_threads > 0 && meta.target_threads != nthreads)
      error->warning(FLERR,
                     "pair_style {}: '{}' was compiled for {} thread(s) per process and runs "
                     "with {}: `mlff-tools compile --threads {}` writes code for this run "
                     "(one thread on code for two ran ~20% slower)",
                     style_name(), model_path, meta.target_threads, nthreads, nthreads);
  }

  // a new model may have other species: coefficients must be given again
  if (allocated) {
    for (int i = 1; i <= atom->ntypes; ++i)
      for (int j = i; j <= atom->ntypes; ++j) setflag[i][j] = 0;
  }
}

/* ---------------------------------------------------------------------- */

void PairMLFF::choose_device(MLFF::DeviceRequest &request)
{
  if (request.kind == "default") request.kind = "cpu";
}

/* ----------------------------------------------------------------------
   pair_coeff * * El1 El2 ... : one element (or NULL) per LAMMPS type
------------------------------------------------------------------------- */

void PairMLFF::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const auto &species = model->metadata().species;
  const int ntypes = atom->ntypes;

  if (narg != 2 + ntypes)
    error->all(FLERR,
               "pair_coeff for mlff expects `* *` and one element per atom type ({} types), got "
               "{} element(s); e.g. `pair_coeff * * {}`",
               ntypes, narg - 2, utils::join_words(std::vector<std::string>(ntypes, species[0]), " "));

  type_to_species.assign(ntypes + 1, -1);
  for (int itype = 1; itype <= ntypes; ++itype) {
    const std::string element = arg[1 + itype];
    if (element == "NULL") continue;
    int index = -1;
    for (std::size_t s = 0; s < species.size(); ++s)
      if (species[s] == element) index = static_cast<int>(s);
    if (index < 0)
      error->all(FLERR,
                 "pair_coeff: model '{}' has no species '{}' (atom type {}); it has: {}; map "
                 "types it does not cover to NULL and give them to another style with "
                 "pair_style hybrid/overlay",
                 model_path, element, itype, utils::join_words(species, " "));
    type_to_species[itype] = index;
  }
  try {
    model->set_type_species(type_to_species);
  } catch (MLFF::ModelError &e) {
    error->all(FLERR, "pair_style mlff: {}", e.what());
  }

  int count = 0;
  for (int i = 1; i <= ntypes; ++i)
    for (int j = i; j <= ntypes; ++j) {
      setflag[i][j] = (type_to_species[i] >= 0 && type_to_species[j] >= 0) ? 1 : 0;
      count += setflag[i][j];
    }
  if (count == 0) error->all(FLERR, "pair_coeff for mlff maps every atom type to NULL");
}

/* ----------------------------------------------------------------------
   checks before a run and the neighbour list request
------------------------------------------------------------------------- */

void PairMLFF::init_style()
{
  check_units();
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style mlff requires `newton pair on` (the LAMMPS default): forces "
                      "on ghost atoms are sent back to their owners; remove `newton off`");
  if (!model) error->all(FLERR, "pair_style mlff: no model loaded");
  check_masses();
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

/* ----------------------------------------------------------------------
   a type whose mass belongs to another element than the one pair_coeff
   gives it (types listed in the wrong order) runs silently wrong: warn when
   the mass is more than 1% off its element's and within 1% of another's
   (isotopes such as deuterium or Si-30 pass)
------------------------------------------------------------------------- */

void PairMLFF::check_masses()
{
  if (comm->me != 0 || atom->mass == nullptr || atom->mass_setflag == nullptr) return;
  const auto &species = model->metadata().species;
  auto standard_mass = [](const std::string &symbol) {
    for (const auto &element : MLFF::ELEMENTS)
      if (symbol == element.symbol) return element.mass;
    return -1.0;
  };
  for (int itype = 1; itype <= atom->ntypes; ++itype) {
    if (type_to_species[itype] < 0 || !atom->mass_setflag[itype]) continue;
    const std::string &symbol = species[type_to_species[itype]];
    const double expected = standard_mass(symbol);
    const double mass = atom->mass[itype];
    if (expected <= 0.0 || std::fabs(mass - expected) <= 0.01 * expected) continue;
    const MLFF::Element *nearest = &MLFF::ELEMENTS[0];
    for (const auto &element : MLFF::ELEMENTS)
      if (std::fabs(element.mass - mass) < std::fabs(nearest->mass - mass)) nearest = &element;
    // only a mass that is another element's (within 1%) says the order is wrong
    if (nearest->symbol == symbol || std::fabs(mass - nearest->mass) > 0.01 * nearest->mass)
      continue;
    error->warning(FLERR,
                   "pair_coeff mlff: atom type {} has mass {:.4g}, the mass of {} ({:.4g}), but "
                   "is mapped to {} ({:.4g}); check that the elements in pair_coeff follow the "
                   "atom types of the data file",
                   itype, mass, nearest->symbol, nearest->mass, symbol, expected);
  }
}

/* ---------------------------------------------------------------------- */

double PairMLFF::init_one(int i, int j)
{
  if (setflag[i][j] == 0)
    error->all(FLERR, "pair_style mlff: pair coefficients for types {} {} are not set", i, j);
  return cutoff;
}

/* ---------------------------------------------------------------------- */

void PairMLFF::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) setflag[i][j] = 0;
}

/* ---------------------------------------------------------------------- */

void PairMLFF::check_units()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style mlff requires `units metal` (eV, Angstrom), the units of "
                      "mlff model files, but the input uses `units {}`; put `units metal` "
                      "before the box is created",
               update->unit_style);
}
