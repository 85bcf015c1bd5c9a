//! All integration tests in one crate (one link of seqgrad instead of one per file): each
//! former `tests/*.rs` file is a module here.

mod cli_data;
mod cli_grad;
mod cli_grad_record;
mod cli_rnn;
mod cli_summary;
mod cli_train_hostile;
mod cli_train_run;
mod cli_usage;
mod common;
mod data_dna;
mod filters;
mod grad_dense;
mod grad_layers;
mod grad_rnn;
mod gradflow;
mod harden_cli;
mod harden_layers;
mod lab_grad;
mod layers_props;
mod parity;
mod plot;
mod rnn_props;
mod rnn_torch;
mod runs_ux;
mod stream_predict;
mod train_callbacks;
mod train_guards;
mod train_loop;
mod train_metrics;
mod train_record;
mod train_resume;
