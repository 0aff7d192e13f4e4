/* ----------------------------------------------------------------------
   mlff: pair_style mlff/kk (see pair_mlff_kokkos.h).

   compute() is the three steps of pair_style mlff, each in Kokkos kernels:
   count the edges of every centre below the cutoff and scan the counts,
   fill edge_index/edge_vec, run the model on those views in place, then
   scatter F_i += g, F_j -= g, energy and W -= edge_vec (outer) g.
------------------------------------------------------------------------- */

#include "pair_mlff_kokkos.h"

#include "atom_kokkos.h"
#include "atom_masks.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "kokkos.h"
#include "memory_kokkos.h"
#include "neigh_list_kokkos.h"
#include "neigh_request.h"
#include "neighbor.h"
#include "update.h"

#include "mlff_model.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <type_traits>

using namespace LAMMPS_NS;

/* ---------------------------------------------------------------------- */

template <class DeviceType>
PairMLFFKokkos<DeviceType>::PairMLFFKokkos(LAMMPS *lmp) : PairMLFF(lmp)
{
  kokkosable = 1;
  kokkos_style = true;
  atomKK = (AtomKokkos *) atom;
  execution_space = ExecutionSpaceFromDevice<DeviceType>::space;
  kokkos_on_gpu = execution_space == Device;
  datamask_read = X_MASK | F_MASK | TAG_MASK | TYPE_MASK | ENERGY_MASK | VIRIAL_MASK;
  datamask_modify = F_MASK | ENERGY_MASK | VIRIAL_MASK;
  profile_phases = {"edges", "model", "tally"};
}

/* ---------------------------------------------------------------------- */

template <class DeviceType> PairMLFFKokkos<DeviceType>::~PairMLFFKokkos()
{
  if (copymode) return;
  memoryKK->destroy_kokkos(k_eatom, eatom);
  memoryKK->destroy_kokkos(k_vatom, vatom);
  eatom = nullptr;
  vatom = nullptr;
}

/* ----------------------------------------------------------------------
   energy, forces and virial of the owned atoms, on the device
------------------------------------------------------------------------- */

template <class DeviceType> void PairMLFFKokkos<DeviceType>::compute(int eflag_in, int vflag_in)
{
  ev_init(eflag_in, vflag_in, 0);
  if (eflag_atom) {
    memoryKK->destroy_kokkos(k_eatom, eatom);
    memoryKK->create_kokkos(k_eatom, eatom, maxeatom, "mlff:eatom");
  }
  if (vflag_atom) {
    memoryKK->destroy_kokkos(k_vatom, vatom);
    memoryKK->create_kokkos(k_vatom, vatom, maxvatom, "mlff:vatom");
  }

  atomKK->sync(execution_space, datamask_read);
  if (eflag_either || vflag_either)
    atomKK->modified(execution_space, datamask_modify);
  else
    atomKK->modified(execution_space, F_MASK);

  profile_mark(-1);
  const int64_t nedges = build_edges();
  double min_rsq = cutoff * cutoff;
  if (nedges > 0) {
    auto rsq = d_edge_rsq;
    Kokkos::parallel_reduce(
        "mlff:min_rsq", Kokkos::RangePolicy<DeviceType>(0, nedges),
        KOKKOS_LAMBDA(const int64_t e, double &low) { low = rsq(e) < low ? rsq(e) : low; },
        Kokkos::Min<double>(min_rsq));
  }
  if (min_rsq < MLFF::OVERLAP_DISTANCE * MLFF::OVERLAP_DISTANCE)
    report_problems(min_rsq, nedges, nullptr);

  MLFF::DeviceGraph graph;
  graph.species = d_species.data();
  graph.natoms = atom->nlocal + atom->nghost;
  graph.edge_index = nedges > 0 ? d_edge_index.data() : nullptr;
  graph.edge_vec = nedges > 0 ? d_edge_vec.data() : nullptr;
  graph.nedges = nedges;
  MLFF::DeviceResult result;
  Kokkos::fence("mlff:edges ready");
  profile_mark(0);
  if (model->native_spec() != nullptr) {
    if (native_model != model.get()) upload_native();
    if (model->metadata().dtype == "float32")
      result = native_compute(native32, d_scratch32, nedges);
    else
      result = native_compute(native64, d_scratch64, nedges);
    Kokkos::fence("mlff:native");
  } else {
    try {
      result = model->compute(graph);
    } catch (MLFF::ModelError &e) {
      error->one(FLERR, "pair_style mlff/kk: {}", e.what());
    }
  }
  profile_mark(1);
  tally(result, nedges);
  profile_mark(2);
  last_nedges = nedges;
}

/* ----------------------------------------------------------------------
   edges: count per centre (mapped types, not beyond the cutoff; a NaN
   distance counts, so the model's non-finite output reports it), scan,
   fill. Returns the number of edges.
------------------------------------------------------------------------- */

template <class DeviceType> int64_t PairMLFFKokkos<DeviceType>::build_edges()
{
  auto x = atomKK->k_x.view<DeviceType>();
  auto type = atomKK->k_type.view<DeviceType>();
  auto *k_list = static_cast<NeighListKokkos<DeviceType> *>(list);
  auto d_ilist = k_list->d_ilist;
  auto d_numneigh = k_list->d_numneigh;
  auto d_neighbors = k_list->d_neighbors;
  const int inum = list->inum;
  const int nall = atom->nlocal + atom->nghost;
  const double cutsq_model = cutoff * cutoff;

  if ((int) d_species.extent(0) < nall) d_species = t_int64_1d("mlff:species", nall * 1.2 + 1);
  if ((int) d_count.extent(0) < inum) {
    d_count = typename AT::t_int_1d("mlff:count", inum * 1.2 + 1);
    d_first = typename AT::t_int_1d("mlff:first", inum * 1.2 + 1);
  }
  auto type_species = d_type_species;
  auto species = d_species;
  auto count = d_count;
  auto first = d_first;

  Kokkos::parallel_for(
      "mlff:species", Kokkos::RangePolicy<DeviceType>(0, nall), KOKKOS_LAMBDA(const int i) {
        const int s = type_species(type(i));
        species(i) = s < 0 ? 0 : s;
      });

  Kokkos::parallel_for(
      "mlff:count", Kokkos::RangePolicy<DeviceType>(0, inum), KOKKOS_LAMBDA(const int ii) {
        const int i = d_ilist(ii);
        int n = 0;
        if (type_species(type(i)) >= 0) {
          for (int jj = 0; jj < d_numneigh(i); ++jj) {
            const int j = d_neighbors(i, jj) & NEIGHMASK;
            if (type_species(type(j)) < 0) continue;
            const double dx = x(j, 0) - x(i, 0), dy = x(j, 1) - x(i, 1), dz = x(j, 2) - x(i, 2);
            if (!(dx * dx + dy * dy + dz * dz >= cutsq_model)) ++n;
          }
        }
        count(ii) = n;
      });

  int64_t nedges = 0;
  Kokkos::parallel_scan(
      "mlff:scan", Kokkos::RangePolicy<DeviceType>(0, inum),
      KOKKOS_LAMBDA(const int ii, int64_t &partial, const bool final) {
        if (final) first(ii) = static_cast<int>(partial);
        partial += count(ii);
      },
      nedges);

  if ((int64_t) d_edge_rsq.extent(0) < nedges) {
    const int64_t capacity = nedges * 1.2 + 16;
    d_edge_index = t_int64_1d("mlff:edge_index", 2 * capacity);
    d_edge_vec = t_double_1d("mlff:edge_vec", 3 * capacity);
    d_edge_rsq = t_double_1d("mlff:edge_rsq", capacity);
  }
  auto edge_index = d_edge_index;
  auto edge_vec = d_edge_vec;
  auto edge_rsq = d_edge_rsq;

  Kokkos::parallel_for(
      "mlff:fill", Kokkos::RangePolicy<DeviceType>(0, inum), KOKKOS_LAMBDA(const int ii) {
        if (count(ii) == 0) return;
        const int i = d_ilist(ii);
        int64_t e = first(ii);
        for (int jj = 0; jj < d_numneigh(i); ++jj) {
          const int j = d_neighbors(i, jj) & NEIGHMASK;
          if (type_species(type(j)) < 0) continue;
          const double dx = x(j, 0) - x(i, 0), dy = x(j, 1) - x(i, 1), dz = x(j, 2) - x(i, 2);
          const double rsq = dx * dx + dy * dy + dz * dz;
          if (rsq >= cutsq_model) continue;
          edge_index(e) = i;
          edge_index(nedges + e) = j;
          edge_vec(3 * e) = dx;
          edge_vec(3 * e + 1) = dy;
          edge_vec(3 * e + 2) = dz;
          edge_rsq(e) = rsq;
          ++e;
        }
      });
  return nedges;
}

/* ----------------------------------------------------------------------
   evaluator native: the student's arrays copied to the device once per model
------------------------------------------------------------------------- */

template <class DeviceType> void PairMLFFKokkos<DeviceType>::upload_native()
{
  const MLFF::StudentSpec &spec = *model->native_spec();
  auto upload = [](const auto &values, auto &view, const char *name) {
    using View = std::remove_reference_t<decltype(view)>;
    view = View(std::string(name), values.size());
    auto host = Kokkos::create_mirror_view(view);
    for (std::size_t k = 0; k < values.size(); ++k) host(k) = values[k];
    Kokkos::deep_copy(view, host);
  };
  if (model->metadata().dtype == "float32") {
    const MLFF::StudentArrays<float> arrays(spec);
    upload(arrays.values, d_values32, "mlff:native_values");
    upload(arrays.ints, d_native_ints, "mlff:native_ints");
    native32 = arrays.view_on(d_values32.data(), d_native_ints.data());
  } else {
    const MLFF::StudentArrays<double> arrays(spec);
    upload(arrays.values, d_values64, "mlff:native_values");
    upload(arrays.ints, d_native_ints, "mlff:native_ints");
    native64 = arrays.view_on(d_values64.data(), d_native_ints.data());
  }
  native_model = model.get();
}

/* ----------------------------------------------------------------------
   evaluator native: each centre's energy and its edges' gradients from
   its own edges (mlff_native.h), one thread per centre; on a GPU the
   centres' scratch is interleaved (value k of centre ii at k inum + ii)
------------------------------------------------------------------------- */

template <class DeviceType>
template <typename T>
MLFF::DeviceResult PairMLFFKokkos<DeviceType>::native_compute(
    const MLFF::StudentView<T> &student, Kokkos::View<T *, DeviceType> &scratch, int64_t nedges)
{
  const int inum = list->inum;
  const int nall = atom->nlocal + atom->nghost;
  if ((int64_t) scratch.extent(0) < (int64_t) inum * student.scratch)
    scratch = Kokkos::View<T *, DeviceType>("mlff:native_scratch",
                                            ((int64_t) inum + inum / 5 + 1) * student.scratch);
  if ((int) d_native_energy.extent(0) < nall)
    d_native_energy = t_double_1d("mlff:native_energy", nall * 1.2 + 1);
  if ((int64_t) d_native_grad.extent(0) < 3 * nedges)
    d_native_grad = t_double_1d("mlff:native_grad", 3 * (nedges + nedges / 5 + 16));

  auto type = atomKK->k_type.view<DeviceType>();
  auto d_ilist = static_cast<NeighListKokkos<DeviceType> *>(list)->d_ilist;
  auto type_species = d_type_species;
  auto count = d_count;
  auto first = d_first;
  auto species = d_species;
  auto edge_index = d_edge_index;
  auto edge_vec = d_edge_vec;
  auto energy = d_native_energy;
  auto grad = d_native_grad;
  auto work = scratch;
  const MLFF::StudentView<T> w = student;
  // MLFF_NATIVE_INTERLEAVE=1: the GPU's layout on a host backend too (tests run it there)
  static const bool interleave_asked = [] {
    const char *value = std::getenv("MLFF_NATIVE_INTERLEAVE");
    return value != nullptr && std::string(value) == "1";
  }();
  const bool interleave = execution_space == Device || interleave_asked;
  const int64_t stride = inum;
  using Grid = MLFF::kokkos_kernels::Strided<T>;
  // one centre, its grid in the scratch (own_grid null) or where own_grid says
  const auto one_atom = KOKKOS_LAMBDA(const int ii, const Grid *own_grid)
  {
    const int i = d_ilist(ii);
    if (type_species(type(i)) < 0) return;
    const int64_t start = first(ii);
    const Grid atom_scratch = interleave ? Grid{work.data() + ii, stride}
                                         : Grid{work.data() + (int64_t) ii * w.scratch, 1};
    energy(i) = double(MLFF::kokkos_kernels::student_atom<T, double, double>(
        w, static_cast<int>(species(i)), count(ii), edge_vec.data() + 3 * start,
        edge_index.data() + nedges + start, species.data(), grad.data() + 3 * start,
        atom_scratch, static_cast<T *>(nullptr), own_grid));
  };
  // MLFF_NATIVE_SHARED=1: each atom's grid in its team's scratch (a GPU block's shared
  // memory), one atom per thread, as many threads per team as fit (up to 128, a multiple of
  // 32 on a GPU; MLFF_NATIVE_TEAM=N asks for N, as tests do on a host backend); off by
  // default until a GPU has measured it against the global grid
  static const int shared_team = [] {
    const char *shared = std::getenv("MLFF_NATIVE_SHARED");
    if (shared == nullptr || std::string(shared) != "1") return 0;
    const char *team = std::getenv("MLFF_NATIVE_TEAM");
    return team ? std::max(1, std::atoi(team)) : -1;
  }();
  bool done = false;
  if (shared_team != 0 && inum > 0) {
    using Policy = Kokkos::TeamPolicy<DeviceType>;
    using Shared = Kokkos::View<T *, typename DeviceType::scratch_memory_space,
                                Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
    const int grid = MLFF::kokkos_kernels::grid_values(student);
    const auto kernel = KOKKOS_LAMBDA(const typename Policy::member_type &member)
    {
      Shared own(member.team_scratch(0), std::size_t(member.team_size()) * grid);
      const int ii = member.league_rank() * member.team_size() + member.team_rank();
      // value k of the team's thread t at k team_size + t: a warp's threads in neighbouring
      // banks
      const Grid own_grid{own.data() + member.team_rank(), member.team_size()};
      if (ii < inum) one_atom(ii, &own_grid);
    };
    const std::size_t room = static_cast<std::size_t>(Policy::scratch_size_max(0));
    const int fit = static_cast<int>(room / Shared::shmem_size(grid));
    const int most = Policy(1, 1).team_size_max(kernel, Kokkos::ParallelForTag());
    int team = shared_team > 0 ? shared_team
                               : (execution_space == Device ? std::min(128, fit / 32 * 32) : 1);
    team = std::min(team, most);
    const std::size_t bytes = Shared::shmem_size(std::size_t(std::max(team, 1)) * grid);
    if (team >= 1 && bytes <= room) {    // else (a grid too large to share) the global grid
      Policy policy((inum + team - 1) / team, team);
      policy.set_scratch_size(0, Kokkos::PerTeam(bytes));
      Kokkos::parallel_for("mlff:native_shared", policy, kernel);
      done = true;
    }
  }
  if (!done)
    Kokkos::parallel_for(
        "mlff:native", Kokkos::RangePolicy<DeviceType>(0, inum),
        KOKKOS_LAMBDA(const int ii) { one_atom(ii, static_cast<const Grid *>(nullptr)); });
  MLFF::DeviceResult result;
  result.atom_energy = d_native_energy.data();
  result.edge_grad = d_native_grad.data();
  return result;
}

/* ----------------------------------------------------------------------
   contract: energy of owned centres; F_i += g, F_j -= g; W -= r (outer) g
------------------------------------------------------------------------- */

template <class DeviceType>
void PairMLFFKokkos<DeviceType>::tally(const MLFF::DeviceResult &result, int64_t nedges)
{
  auto f = atomKK->k_f.view<DeviceType>();
  auto type = atomKK->k_type.view<DeviceType>();
  auto d_ilist = static_cast<NeighListKokkos<DeviceType> *>(list)->d_ilist;
  auto type_species = d_type_species;
  const int inum = list->inum;
  const int64_t nall = atom->nlocal + atom->nghost;
  const t_const_double_um atom_energy(result.atom_energy, result.atom_energy ? nall : 0);
  const t_const_double_um edge_grad(result.edge_grad, result.edge_grad ? 3 * nedges : 0);
  auto edge_index = d_edge_index;
  auto edge_vec = d_edge_vec;
  const int want_eatom = eflag_atom, want_vatom = vflag_atom, want_virial = vflag_global;
  typename AT::t_kkacc_1d d_eatom;
  typename AT::t_kkacc_1d_6 d_vatom;
  if (eflag_atom) d_eatom = k_eatom.template view<DeviceType>();
  if (vflag_atom) d_vatom = k_vatom.template view<DeviceType>();

  double energy = 0.0;
  int bad_energy = 0;
  Kokkos::parallel_reduce(
      "mlff:energy", Kokkos::RangePolicy<DeviceType>(0, inum),
      KOKKOS_LAMBDA(const int ii, double &sum, int &bad) {
        const int i = d_ilist(ii);
        if (type_species(type(i)) < 0) return;
        const double e = atom_energy(i);
        if (!Kokkos::isfinite(e)) ++bad;
        sum += e;
        if (want_eatom) d_eatom(i) += e;
      },
      energy, bad_energy);

  double w[6] = {0, 0, 0, 0, 0, 0};
  int bad_grad = 0;
  Kokkos::parallel_reduce(
      "mlff:scatter", Kokkos::RangePolicy<DeviceType>(0, nedges),
      KOKKOS_LAMBDA(const int64_t e, double &wxx, double &wyy, double &wzz, double &wxy,
                    double &wxz, double &wyz, int &bad) {
        const int i = static_cast<int>(edge_index(e));
        const int j = static_cast<int>(edge_index(nedges + e));
        const double gx = edge_grad(3 * e), gy = edge_grad(3 * e + 1), gz = edge_grad(3 * e + 2);
        if (!(Kokkos::isfinite(gx) && Kokkos::isfinite(gy) && Kokkos::isfinite(gz))) ++bad;
        Kokkos::atomic_add(&f(i, 0), gx);
        Kokkos::atomic_add(&f(i, 1), gy);
        Kokkos::atomic_add(&f(i, 2), gz);
        Kokkos::atomic_add(&f(j, 0), -gx);
        Kokkos::atomic_add(&f(j, 1), -gy);
        Kokkos::atomic_add(&f(j, 2), -gz);
        if (want_virial || want_vatom) {
          const double rx = edge_vec(3 * e), ry = edge_vec(3 * e + 1), rz = edge_vec(3 * e + 2);
          const double v[6] = {-rx * gx, -ry * gy, -rz * gz, -rx * gy, -rx * gz, -ry * gz};
          wxx += v[0];
          wyy += v[1];
          wzz += v[2];
          wxy += v[3];
          wxz += v[4];
          wyz += v[5];
          if (want_vatom)
            for (int k = 0; k < 6; ++k) {
              Kokkos::atomic_add(&d_vatom(i, k), 0.5 * v[k]);
              Kokkos::atomic_add(&d_vatom(j, k), 0.5 * v[k]);
            }
        }
      },
      w[0], w[1], w[2], w[3], w[4], w[5], bad_grad);

  if (bad_energy || bad_grad) report_problems(cutoff * cutoff, nedges, &result);
  if (eflag_global) eng_vdwl += energy;
  if (vflag_global)
    for (int k = 0; k < 6; ++k) virial[k] += w[k];
  if (eflag_atom) {
    k_eatom.template modify<DeviceType>();
    k_eatom.sync_host();
  }
  if (vflag_atom) {
    k_vatom.template modify<DeviceType>();
    k_vatom.sync_host();
  }
}

/* ----------------------------------------------------------------------
   an overlap or a non-finite model output: find the first offender on the
   host (the slow path, taken once before LAMMPS stops) and stop with the
   same messages as pair_style mlff
------------------------------------------------------------------------- */

template <class DeviceType>
void PairMLFFKokkos<DeviceType>::report_problems(double min_rsq, int64_t nedges,
                                                 const MLFF::DeviceResult *result)
{
  auto h_edge_index = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d_edge_index);
  auto h_edge_rsq = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d_edge_rsq);
  atomKK->sync(Host, TAG_MASK | TYPE_MASK);
  const int64_t nall = atom->nlocal + atom->nghost;
  if (result == nullptr) {
    for (int64_t e = 0; e < nedges; ++e)
      if (h_edge_rsq(e) == min_rsq)
        stop_overlap(h_edge_index(e), h_edge_index(nedges + e), std::sqrt(min_rsq));
    return;
  }
  // the model's outputs (device memory owned by torch) copied to plain host views
  Kokkos::View<double *, Kokkos::HostSpace> h_energy("mlff:h_energy", result->atom_energy ? nall : 0);
  Kokkos::View<double *, Kokkos::HostSpace> h_grad("mlff:h_grad", result->edge_grad ? 3 * nedges : 0);
  Kokkos::deep_copy(h_energy, t_const_double_um(result->atom_energy, h_energy.extent(0)));
  Kokkos::deep_copy(h_grad, t_const_double_um(result->edge_grad, h_grad.extent(0)));
  auto h_ilist = Kokkos::create_mirror_view_and_copy(
      Kokkos::HostSpace(), static_cast<NeighListKokkos<DeviceType> *>(list)->d_ilist);
  for (int ii = 0; ii < list->inum; ++ii) {
    const int i = h_ilist(ii);
    if (type_to_species[atom->type[i]] >= 0 && !std::isfinite(h_energy(i)))
      stop_non_finite_energy(i);
  }
  for (int64_t e = 0; e < nedges; ++e)
    if (!std::isfinite(h_grad(3 * e)) || !std::isfinite(h_grad(3 * e + 1)) ||
        !std::isfinite(h_grad(3 * e + 2)))
      stop_non_finite_force(h_edge_index(e), h_edge_index(nedges + e), std::sqrt(h_edge_rsq(e)));
  error->one(FLERR,
             "pair_style mlff/kk: the model returned a non-finite value at step {}; check the "
             "input structure for NaN positions or overlapping atoms",
             update->ntimestep);
}

/* ----------------------------------------------------------------------
   pair_style as in mlff; a new model's native arrays are uploaded at its
   first step (a model at the address of one uploaded before is another)
------------------------------------------------------------------------- */

template <class DeviceType> void PairMLFFKokkos<DeviceType>::settings(int narg, char **arg)
{
  PairMLFF::settings(narg, arg);
  native_model = nullptr;
}

/* ----------------------------------------------------------------------
   pair_coeff as in mlff, then the type map goes to the device
------------------------------------------------------------------------- */

template <class DeviceType> void PairMLFFKokkos<DeviceType>::coeff(int narg, char **arg)
{
  PairMLFF::coeff(narg, arg);
  const int n = atom->ntypes + 1;
  d_type_species = typename AT::t_int_1d("mlff:type_species", n);
  auto h_type_species = Kokkos::create_mirror_view(d_type_species);
  for (int t = 0; t < n; ++t) h_type_species(t) = type_to_species[t];
  Kokkos::deep_copy(d_type_species, h_type_species);
}

/* ----------------------------------------------------------------------
   a full Kokkos neighbour list in this execution space; newton pair on
------------------------------------------------------------------------- */

template <class DeviceType> void PairMLFFKokkos<DeviceType>::init_style()
{
  if (force->newton_pair == 0)
    error->all(FLERR,
               "pair_style mlff/kk requires `newton pair on`: forces on ghost atoms are sent "
               "back to their owners. The Kokkos GPU default is newton off: run with "
               "`-pk kokkos newton on neigh half` (or `package kokkos newton on neigh half`)");
  PairMLFF::init_style();
  auto request = neighbor->find_request(this);
  request->set_kokkos_host(std::is_same_v<DeviceType, LMPHostType> &&
                           !std::is_same_v<DeviceType, LMPDeviceType>);
  request->set_kokkos_device(std::is_same_v<DeviceType, LMPDeviceType>);
}

/* ----------------------------------------------------------------------
   the model lives where this style's kernels run
------------------------------------------------------------------------- */

template <class DeviceType>
void PairMLFFKokkos<DeviceType>::choose_device(MLFF::DeviceRequest &request)
{
  std::string here = "cpu";
  int index = -1;
#ifdef KOKKOS_ENABLE_CUDA
  if constexpr (std::is_same_v<typename DeviceType::execution_space, Kokkos::Cuda>) {
    here = "cuda";
    const typename DeviceType::execution_space space;
    index = space.cuda_device();
  }
#endif
  if (request.kind != "default" && request.kind != "auto" && request.kind != here)
    error->all(FLERR,
               "pair_style mlff/kk: `device {}` conflicts with where Kokkos runs this style "
               "({}); remove the device keyword, or use mlff/kk/host or mlff/kk/device",
               request.kind, here);
  request.kind = here;
  request.cuda_index = index;
}

namespace LAMMPS_NS {
template class PairMLFFKokkos<LMPDeviceType>;
#ifdef LMP_KOKKOS_GPU
template class PairMLFFKokkos<LMPHostType>;
#endif
}    // namespace LAMMPS_NS
