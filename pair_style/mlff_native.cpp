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
  explicit NativeStudent(const MLFF::StudentSpec &spec)
  {
    auto cast = [](const std::vector<double> &from) {
      return std::vector<T>(from.begin(), from.end());
    };
    frequencies = cast(spec.frequencies);
    pair_weights = cast(spec.pair_weights);
    rank3 = cast(spec.rank3);
    reference_energy = cast(spec.reference_energy);
    feature_mean = cast(spec.feature_mean);
    feature_inv_std = cast(spec.feature_inv_std);
    layer_in = spec.layer_in;
    layer_out = spec.layer_out;
    int widest = layer_in[0];
    for (std::size_t layer = 0; layer < layer_in.size(); ++layer) {
      const int in = layer_in[layer], out = layer_out[layer];
      weight_offset.push_back(static_cast<int>(weight.size()));
      bias_offset.push_back(static_cast<int>(bias.size()));
      const auto &w = spec.layer_weight[layer];
      weight.insert(weight.end(), w.begin(), w.end());
      weight_t.resize(weight.size());
      for (int o = 0; o < out; ++o)
        for (int i = 0; i < in; ++i) weight_t[weight_offset[layer] + i * out + o] = T(w[o * in + i]);
      bias.insert(bias.end(), spec.layer_bias[layer].begin(), spec.layer_bias[layer].end());
      widest = std::max(widest, std::max(in, out));
    }

    view.n_species = spec.n_species;
    view.n_radial = spec.n_radial;
    view.n_channels = spec.n_channels;
    view.l_max = spec.l_max;
    view.n_angular = spec.l_max >= 3 ? 18 : 8;
    view.n_values = 1 + view.n_angular;
    view.n_descriptors = static_cast<int>(spec.feature_mean.size());
    view.n_layers = static_cast<int>(layer_in.size());
    view.widest = widest;
    view.cutoff = T(spec.cutoff);
    view.envelope_scale = T(std::sqrt(2.0 / spec.cutoff));
    view.energy_scale = T(spec.energy_scale);
    view.inv_avg_neighbours = T(spec.inv_avg_neighbours);
    view.frequencies = frequencies.data();
    view.pair_weights = pair_weights.data();
    view.rank3 = rank3.data();
    view.reference_energy = reference_energy.data();
    view.feature_mean = feature_mean.data();
    view.feature_inv_std = feature_inv_std.data();
    view.weight = weight.data();
    view.weight_t = weight_t.data();
    view.bias = bias.data();
    view.layer_in = layer_in.data();
    view.layer_out = layer_out.data();
    view.weight_offset = weight_offset.data();
    view.bias_offset = bias_offset.data();

    // an atom with no edges: the readout of all-zero densities, one value per species
    std::vector<T> scratch(view.scratch_size());
    for (int s = 0; s < spec.n_species; ++s)
      idle.push_back(MLFF::student_atom<T, double, double>(view, s, 0, nullptr, nullptr,
                                                           nullptr, nullptr, scratch.data()));
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
    const auto &w = view;
    at::parallel_for(0, nruns, 64, [&](int64_t begin, int64_t end) {
      std::vector<T> scratch(w.scratch_size());
      for (int64_t run = begin; run < end; ++run) {
        const int64_t start = runs[run], count = runs[run + 1] - start;
        const int64_t i = first[start];
        atom_energy[i] = double(MLFF::student_atom<T, double, double>(
            w, static_cast<int>(species[i]), count, vec + 3 * start, nbr + start, species,
            grad + 3 * start, scratch.data()));
      }
    });

    if (!grouped)
      for (int64_t e = 0; e < nedges; ++e)
        for (int k = 0; k < 3; ++k) edge_grad[3 * order[e] + k] = sorted_grad[3 * e + k];
  }

 private:
  std::vector<T> frequencies, pair_weights, rank3, reference_energy, feature_mean,
      feature_inv_std, weight, weight_t, bias, idle;
  std::vector<int> layer_in, layer_out, weight_offset, bias_offset;
  MLFF::StudentView<T> view{};
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
