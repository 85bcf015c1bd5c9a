//! Time building a model (weight initialisation included) from a model file.
//!
//! `cargo run --release --example build_time -- MODEL.json [THREADS]`
//!
//! Prints one line: the model file, the thread count, the parameter count and the seconds
//! `Sequential::<f32>::from_file` took (best of three).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: build_time MODEL.json [THREADS]")?;
    let threads: usize = match args.next() {
        Some(t) => t.parse()?,
        None => rayon::current_num_threads(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut best = f64::INFINITY;
    let mut params = 0;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let model = pool.install(|| seqgrad::Sequential::<f32>::from_file(&path, 0))?;
        best = best.min(t.elapsed().as_secs_f64());
        params = model.param_count();
    }
    println!("{path}\tthreads {threads}\tparams {params}\tbuild {best:.3} s");
    Ok(())
}
