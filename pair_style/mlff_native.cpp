/* ----------------------------------------------------------------------
   mlff: the native student on the host (see mlff_native.h).
------------------------------------------------------------------------- */

#include "mlff_native.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

namespace {

// out[b][c] += sum over r of m[r][c] v[b][r], for nb vectors v[b] (m: rows x cols, row-major):
// the readout's matrix products, eight columns of four vectors at a time in registers (each
// row of m read once for four atoms; an accumulator in memory cost a store and a load per
// multiply-add)
template <typename T>
inline void add_products(const T *m, int rows, int cols, const T *const *v, T *const *out,
                         int nb)
{
  constexpr int COLS = 8, VECS = 4;
  for (int b0 = 0; b0 < nb; b0 += VECS) {
    const int nv = std::min(VECS, nb - b0);
    int c0 = 0;
    for (; c0 + COLS <= cols; c0 += COLS) {
      T acc[VECS][COLS] = {};
      for (int r = 0; r < rows; ++r) {
        const T *row = m + std::size_t(r) * cols + c0;
        for (int b = 0; b < VECS; ++b) {
          const T x = b < nv ? v[b0 + b][r] : T(0);
          for (int k = 0; k < COLS; ++k) acc[b][k] += row[k] * x;
        }
      }
      for (int b = 0; b < nv; ++b)
        for (int k = 0; k < COLS; ++k) out[b0 + b][c0 + k] += acc[b][k];
    }
    for (; c0 < cols; ++c0)    // the columns left over (the last layer's one)
      for (int b = 0; b < nv; ++b) {
        T sum = 0;
        for (int r = 0; r < rows; ++r) sum += m[std::size_t(r) * cols + c0] * v[b0 + b][r];
        out[b0 + b][c0] += sum;
      }
  }
}

// the same products for AVX2 with FMA: 16 floats (8 doubles) of columns, two registers' worth,
// so that eight chains of multiply-adds overlap; a block of fewer than four vectors repeats
// its last vector (computed, not stored) instead of testing each vector in the inner loop
// (GCC vectorises each form well only for its own target: the baseline's form, built for
// AVX2, kept one chain; this form, built for SSE2, ran 3x slower)
template <typename T, int W>
inline void add_columns_wide(const T *m, int rows, int cols, int c0, const T *const *vb,
                             T *const *out, int nv)
{
  T acc[4][W] = {};
  for (int r = 0; r < rows; ++r) {
    const T *row = m + std::size_t(r) * cols + c0;
    for (int b = 0; b < 4; ++b) {
      const T x = vb[b][r];
      for (int k = 0; k < W; ++k) acc[b][k] += row[k] * x;
    }
  }
  for (int b = 0; b < nv; ++b)
    for (int k = 0; k < W; ++k) out[b][c0 + k] += acc[b][k];
}

template <typename T>
inline void add_products_wide(const T *m, int rows, int cols, const T *const *v,
                              T *const *out, int nb)
{
  constexpr int COLS = 64 / sizeof(T), VECS = 4;
  for (int b0 = 0; b0 < nb; b0 += VECS) {
    const int nv = std::min(VECS, nb - b0);
    const T *vb[VECS];
    for (int b = 0; b < VECS; ++b) vb[b] = v[b0 + std::min(b, nv - 1)];
    int c0 = 0;
    for (; c0 + COLS <= cols; c0 += COLS)
      add_columns_wide<T, COLS>(m, rows, cols, c0, vb, out + b0, nv);
    if (c0 + COLS / 2 <= cols) {
      add_columns_wide<T, COLS / 2>(m, rows, cols, c0, vb, out + b0, nv);
      c0 += COLS / 2;
    }
    for (; c0 < cols; ++c0)    // the columns left over (the last layer's one)
      for (int b = 0; b < nv; ++b) {
        T sum = 0;
        for (int r = 0; r < rows; ++r) sum += m[std::size_t(r) * cols + c0] * v[b0 + b][r];
        out[b0 + b][c0] += sum;
      }
  }
}

// the products for the plugin's baseline (x86-64: SSE2, 16-byte registers) and, on x86-64 with
// GCC, also for AVX2 with FMA (32-byte registers, one instruction per multiply-add), chosen by
// the CPU at the first call; an `accurate` student's readout (96 wide, 424 inputs) is a third
// of its step
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__INTEL_LLVM_COMPILER)
#define MLFF_AVX2_PRODUCTS 1
template <typename T>
__attribute__((target("avx2,fma"), flatten)) void products_avx2(const T *m, int rows, int cols,
                                                                const T *const *v,
                                                                T *const *out, int nb)
{
  add_products_wide(m, rows, cols, v, out, nb);
}
#endif

template <typename T>
inline void products(const T *m, int rows, int cols, const T *const *v, T *const *out, int nb)
{
#ifdef MLFF_AVX2_PRODUCTS
  // MLFF_NATIVE_AVX2=0: the baseline's code on any CPU (tests run it)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                           !(std::getenv("MLFF_NATIVE_AVX2") &&
                             std::string(std::getenv("MLFF_NATIVE_AVX2")) == "0");
  if (avx2) return products_avx2(m, rows, cols, v, out, nb);
#endif
  add_products(m, rows, cols, v, out, nb);
}

template <typename T> class NativeStudent : public MLFF::NativeModel {
 public:
  explicit NativeStudent(const MLFF::StudentSpec &spec) : arrays(spec)
  {
    view = arrays.view_on(arrays.values.data(), arrays.ints.data());
    for (int layer = 0; layer < view.n_layers; ++layer) work_size += 2 * BLOCK * view.layer_out[layer];
    work_size += 2 * BLOCK * view.widest;
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
    const int64_t per_edge = MLFF::host_kernels::edge_values(w);
    at::parallel_for(0, nruns, 64, [&](int64_t begin, int64_t end) {
      // BLOCK atoms at a time: their sums, one readout of all of them, their gradients
      std::vector<T> scratch(BLOCK * w.scratch), cache(BLOCK * most * per_edge), work(work_size);
      T *atom_scratch[BLOCK];
      int zi[BLOCK];
      T energy[BLOCK];
      for (int64_t block = begin; block < end; block += BLOCK) {
        const int nb = static_cast<int>(std::min<int64_t>(BLOCK, end - block));
        for (int b = 0; b < nb; ++b) {
          const int64_t start = runs[block + b], count = runs[block + b + 1] - start;
          atom_scratch[b] = scratch.data() + b * w.scratch;
          zi[b] = static_cast<int>(species[first[start]]);
          MLFF::host_kernels::atom_sums<T, double>(w, zi[b], count, vec + 3 * start,
                                                   nbr + start, species, atom_scratch[b],
                                                   cache.data() + b * most * per_edge);
        }
        readout(nb, zi, atom_scratch, energy, work.data());
        for (int b = 0; b < nb; ++b) {
          const int64_t start = runs[block + b], count = runs[block + b + 1] - start;
          atom_energy[first[start]] = double(energy[b]);
          MLFF::host_kernels::atom_gradient<T, double, double>(
              w, zi[b], count, vec + 3 * start, nbr + start, species, grad + 3 * start,
              atom_scratch[b], cache.data() + b * most * per_edge);
        }
      }
    });

    if (!grouped)
      for (int64_t e = 0; e < nedges; ++e)
        for (int k = 0; k < 3; ++k) edge_grad[3 * order[e] + k] = sorted_grad[3 * e + k];
  }

 private:
  // the readout of nb atoms at once: each weight row read once for all of them (the one-atom
  // readout read a wide student's weights again for every atom: `accurate` ran 1.4x the
  // TorchScript file instead of 2x). Energies to energy[b], d E / d features in place
  void readout(int nb, const int *zi, T *const *atom_scratch, T *energy, T *work) const
  {
    const auto &w = view;
    const T *input[BLOCK];
    T *pre[BLOCK];
    for (int b = 0; b < nb; ++b)
      input[b] = MLFF::host_kernels::atom_scratch(w, atom_scratch[b]).features;
    T *layer_work = work;
    for (int layer = 0; layer < w.n_layers; ++layer) {
      const int in = w.layer_in[layer], out = w.layer_out[layer];
      const T *wt = w.weight_t + w.weight_offset[layer], *bias = w.bias + w.bias_offset[layer];
      for (int b = 0; b < nb; ++b) {
        pre[b] = layer_work + 2 * b * out;
        for (int o = 0; o < out; ++o) pre[b][o] = bias[o];
      }
      products(wt, in, out, input, pre, nb);
      for (int b = 0; b < nb; ++b) {
        T *post = pre[b] + out;
        if (layer + 1 < w.n_layers)
          for (int o = 0; o < out; ++o) post[o] = pre[b][o] / (T(1) + std::exp(-pre[b][o]));
        else
          energy[b] = w.reference_energy[zi[b]] + w.energy_scale * pre[b][0];
        input[b] = post;
      }
      layer_work += 2 * BLOCK * out;
    }
    // back: grad[b] holds d E / d (a layer's output), then its input
    T *grad = layer_work, *grad_in = layer_work + BLOCK * w.widest;
    for (int b = 0; b < nb; ++b) grad[b * w.widest] = w.energy_scale;
    for (int layer = w.n_layers - 1; layer >= 0; --layer) {
      const int in = w.layer_in[layer], out = w.layer_out[layer];
      layer_work -= 2 * BLOCK * out;
      if (layer + 1 < w.n_layers)
        for (int b = 0; b < nb; ++b) {
          const T *p = layer_work + 2 * b * out;
          T *g = grad + b * w.widest;
          for (int o = 0; o < out; ++o) {
            const T sigmoid = T(1) / (T(1) + std::exp(-p[o]));
            g[o] *= sigmoid * (T(1) + p[o] * (T(1) - sigmoid));
          }
        }
      const T *wm = w.weight + w.weight_offset[layer];
      const T *g[BLOCK];
      T *gi[BLOCK];
      for (int b = 0; b < nb; ++b) {
        g[b] = grad + b * w.widest;
        gi[b] = grad_in + b * w.widest;
        for (int i = 0; i < in; ++i) gi[b][i] = 0;
      }
      products(wm, out, in, g, gi, nb);
      std::swap(grad, grad_in);
    }
    for (int b = 0; b < nb; ++b) {
      T *features = MLFF::host_kernels::atom_scratch(w, atom_scratch[b]).features;
      for (int f = 0; f < w.layer_in[0]; ++f) features[f] = grad[b * w.widest + f];
    }
  }

  static constexpr int BLOCK = 8;
  MLFF::StudentArrays<T> arrays;
  MLFF::StudentView<T> view{};
  std::vector<T> idle;
  std::size_t work_size = 0;    // readout(): each layer's pre-activations and outputs, grads
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
