/* ----------------------------------------------------------------------
   mlff: the native student on the host (see mlff_native.h).
------------------------------------------------------------------------- */

#include "mlff_native.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <memory>

namespace {

template <typename T> class NativeStudent : public MLFF::NativeModel {
 public:
  explicit NativeStudent(const MLFF::StudentSpec &spec) : arrays(spec)
  {
    view = arrays.view_on(arrays.values.data(), arrays.ints.data());
    // an atom with no edges: the readout of all-zero densities, one value per species
    std::vector<T> scratch(view.scratch);
    for (int s = 0; s < spec.n_species; ++s)
      idle.push_back(MLFF::host_kernels::student_atom<T, double, double>(
          view, s, 0, nullptr, nullptr, nullptr, nullptr, scratch.data()));
  }

  void compute(int64_t natoms, const int64_t *species, int64_t nedges, const int64_t *centre,
               const int64_t *neighbour, const double *edge_vec, double *atom_energy,
               double *edge_grad) override
  {
    for (int64_t i = 0; i < natoms; ++i) atom_energy[i] = double(idle[species[i]]);
    if (nedges == 0) return;

    // each centre's edges in one run (LAMMPS's graphs and mlff's calculator give them so);
    // where a centre comes back after another, the edges are gathered by centre first
    runs.clear();
    seen.assign(natoms, 0);
    bool grouped = true;
    for (int64_t e = 0; e < nedges; ++e)
      if (e == 0 || centre[e] != centre[e - 1]) {
        if (seen[centre[e]]) grouped = false;
        seen[centre[e]] = 1;
        runs.push_back(e);
      }
    runs.push_back(nedges);
    const int64_t *nbr = neighbour;
    const double *vec = edge_vec;
    const int64_t *first = centre;
    double *grad = edge_grad;
    if (!grouped) {
      order.resize(nedges);
      for (int64_t e = 0; e < nedges; ++e) order[e] = e;
      std::stable_sort(order.begin(), order.end(),
                       [centre](int64_t p, int64_t q) { return centre[p] < centre[q]; });
      sorted_centre.resize(nedges);
      sorted_neighbour.resize(nedges);
      sorted_vec.resize(3 * nedges);
      sorted_grad.resize(3 * nedges);
      runs.clear();
      for (int64_t e = 0; e < nedges; ++e) {
        const int64_t from = order[e];
        sorted_centre[e] = centre[from];
        sorted_neighbour[e] = neighbour[from];
        for (int k = 0; k < 3; ++k) sorted_vec[3 * e + k] = edge_vec[3 * from + k];
        if (e == 0 || sorted_centre[e] != sorted_centre[e - 1]) runs.push_back(e);
      }
      runs.push_back(nedges);
      nbr = sorted_neighbour.data();
      vec = sorted_vec.data();
      first = sorted_centre.data();
      grad = sorted_grad.data();
    }

    const int64_t nruns = static_cast<int64_t>(runs.size()) - 1;
    int64_t most = 0;    // edges of the busiest centre: the size of the per-edge cache
    for (int64_t run = 0; run < nruns; ++run) most = std::max(most, runs[run + 1] - runs[run]);
    const auto &w = view;
    at::parallel_for(0, nruns, 64, [&](int64_t begin, int64_t end) {
      std::vector<T> scratch(w.scratch), cache(most * MLFF::host_kernels::edge_values(w));
      for (int64_t run = begin; run < end; ++run) {
        const int64_t start = runs[run], count = runs[run + 1] - start;
        const int64_t i = first[start];
        atom_energy[i] = double(MLFF::host_kernels::student_atom<T, double, double>(
            w, static_cast<int>(species[i]), count, vec + 3 * start, nbr + start, species,
            grad + 3 * start, scratch.data(), cache.data()));
      }
    });

    if (!grouped)
      for (int64_t e = 0; e < nedges; ++e)
        for (int k = 0; k < 3; ++k) edge_grad[3 * order[e] + k] = sorted_grad[3 * e + k];
  }

 private:
  MLFF::StudentArrays<T> arrays;
  MLFF::StudentView<T> view{};
  std::vector<T> idle;
  // per call: where each centre's run of edges starts, and the gathered copy where needed
  std::vector<int64_t> runs, order, sorted_centre, sorted_neighbour;
  std::vector<char> seen;
  std::vector<double> sorted_vec, sorted_grad;
};

}    // namespace

std::string MLFF::check_student_spec(const StudentSpec &spec)
{
  const int S = spec.n_species, NR = spec.n_radial, K = spec.n_channels;
  if (S < 1 || NR < 1 || K < 1) return "no species, radial functions or channels";
  if (NR > host_kernels::MAX_RADIAL)
    return std::to_string(NR) + " radial functions, more than " +
           std::to_string(host_kernels::MAX_RADIAL);
  if (spec.l_max != 2 && spec.l_max != 3) return "l_max " + std::to_string(spec.l_max);
  if (static_cast<int>(spec.frequencies.size()) != NR) return "frequencies of another size";
  if (spec.pair_weights.size() != std::size_t(S) * S * NR * (spec.l_max + 1) * K)
    return "radial weights of another size";
  if (spec.l_max == 3 && spec.rank3.size() != 270) return "no l = 3 projection";
  if (static_cast<int>(spec.reference_energy.size()) != S) return "reference energies";
  const int descriptors = K + (spec.l_max + 1) * (K * (K + 1) / 2);
  if (static_cast<int>(spec.feature_mean.size()) != descriptors ||
      spec.feature_inv_std.size() != spec.feature_mean.size())
    return "descriptor statistics of another size";
  const std::size_t layers = spec.layer_in.size();
  if (layers == 0 || spec.layer_out.size() != layers || spec.layer_weight.size() != layers ||
      spec.layer_bias.size() != layers)
    return "no readout layers";
  if (spec.layer_in[0] != descriptors + S) return "a readout input of another width";
  for (std::size_t layer = 0; layer < layers; ++layer) {
    if (spec.layer_weight[layer].size() !=
            std::size_t(spec.layer_in[layer]) * spec.layer_out[layer] ||
        static_cast<int>(spec.layer_bias[layer].size()) != spec.layer_out[layer])
      return "readout weights of another shape";
    if (layer > 0 && spec.layer_in[layer] != spec.layer_out[layer - 1])
      return "readout layers that do not chain";
  }
  if (spec.layer_out[layers - 1] != 1) return "a readout of more than one output";
  return "";
}

MLFF::NativeModel *MLFF::make_native_model(const StudentSpec &spec, const std::string &dtype)
{
  if (dtype == "float32") return new NativeStudent<float>(spec);
  return new NativeStudent<double>(spec);
}
