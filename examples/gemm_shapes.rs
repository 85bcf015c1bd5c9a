//! Times given f32 products through `seqgrad::layers::gemm::mat_mul` (the `gemm` crate) in a
//! rayon pool, the way a model runs them: alone on the pool, and two at once (`rayon::join`, as
//! a bidirectional layer's two directions run).
//!
//! `cargo run --release --example gemm_shapes -- THREADS M,K,N,A_T,B_T,ACC,REPS ...`
//!
//! `A_T`/`B_T` are 1 when that operand is stored transposed (column-major), and `ACC` is 1 when
//! the product adds into `C` (β = 1) rather than overwriting it, as `SEQGRAD_LOG_GEMM=1`
//! reports them. For each spec, prints one JSON line `{"spec","alone_s","pair_s"}`: seconds for
//! `REPS` products alone, and for two sets of `REPS` products side by side, each set with its
//! own operands (as a bidirectional layer's two directions have); medians of 5 timed runs
//! after a warm-up. `benches/peers/gemm_bound.py`
//! runs it.

use ndarray::{Array2, ArrayView2};
use seqgrad::layers::gemm::mat_mul;

#[path = "../benches/support/gemm_inputs.rs"]
mod gemm_inputs;
use gemm_inputs::{filled, median_secs};

struct Spec {
    m: usize,
    k: usize,
    n: usize,
    a_t: bool,
    b_t: bool,
    acc: bool,
    reps: usize,
}

fn parse(spec: &str) -> Result<Spec, String> {
    let v: Vec<usize> = spec
        .split(',')
        .map(|x| x.parse::<usize>().map_err(|e| format!("{spec}: {e}")))
        .collect::<Result<_, _>>()?;
    let flag = |x: usize| match x {
        0 | 1 => Ok(x == 1),
        _ => Err(format!("{spec}: A_T, B_T and ACC are 0 or 1")),
    };
    match v[..] {
        [m, k, n, a_t, b_t, acc, reps] => Ok(Spec {
            m,
            k,
            n,
            a_t: flag(a_t)?,
            b_t: flag(b_t)?,
            acc: flag(acc)?,
            reps: reps.max(1),
        }),
        _ => Err(format!("{spec}: want M,K,N,A_T,B_T,ACC,REPS")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().ok_or("usage: THREADS SPEC ...")?.parse()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    for spec in args {
        let Spec {
            m,
            k,
            n,
            a_t,
            b_t,
            acc,
            reps,
        } = parse(&spec)?;
        let (a, b) = (filled(m, k, a_t, 1), filled(k, n, b_t, 2));
        let (a2, b2) = (filled(m, k, a_t, 3), filled(k, n, b_t, 4));
        let (mut c1, mut c2) = (Array2::<f32>::zeros((m, n)), Array2::<f32>::zeros((m, n)));
        let beta = if acc { 1.0 } else { 0.0 };
        let run = |a: ArrayView2<f32>, b: ArrayView2<f32>, c: &mut Array2<f32>| {
            for _ in 0..reps {
                mat_mul(1.0, &a, &b, beta, c);
            }
        };
        let alone = pool.install(|| median_secs(|| run(a.view(), b.view(), &mut c1)));
        let pair = pool.install(|| {
            median_secs(|| {
                rayon::join(
                    || run(a.view(), b.view(), &mut c1),
                    || run(a2.view(), b2.view(), &mut c2),
                );
            })
        });
        println!("{{\"spec\":\"{spec}\",\"alone_s\":{alone:.6},\"pair_s\":{pair:.6}}}");
    }
    Ok(())
}
