//! Metrics against hand-computed values.

use ndarray::array;
use seqgrad::metrics::{
    accuracy, average_precision, confusion, mean_defined, per_label_auc, roc_auc,
};

#[test]
fn roc_auc_of_known_rankings() {
    // perfect, reversed, and one swapped pair out of 2×2 pairs
    let t = [true, true, false, false];
    assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &t), Some(1.0));
    assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &t), Some(0.0));
    assert_eq!(roc_auc(&[0.9, 0.3, 0.4, 0.1], &t), Some(0.75));
    // a tie between a positive and a negative counts ½: pairs (p1>n1,p1>n2,p2=n1,p2>n2) = 3.5/4
    assert_eq!(roc_auc(&[0.9, 0.5, 0.5, 0.1], &t), Some(0.875));
    assert_eq!(roc_auc(&[0.9, 0.5], &[true, true]), None);
}

#[test]
fn average_precision_by_hand() {
    // ranking: P N P N → precision at the positives 1 and 2/3 → AP = ½·1 + ½·⅔
    let ap = average_precision(&[0.9, 0.8, 0.7, 0.1], &[true, false, true, false]).unwrap();
    assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12, "{ap}");
    assert_eq!(average_precision(&[0.9, 0.8], &[true, true]), Some(1.0));
    assert_eq!(average_precision(&[0.9, 0.8], &[false, false]), None);
    // a tie of one positive and one negative at the top: precision ½ at recall 1
    assert_eq!(average_precision(&[0.5, 0.5], &[true, false]), Some(0.5));
}

#[test]
fn accuracy_and_confusion() {
    let p = array![
        [0.7f32, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.3, 0.5],
        [0.6, 0.3, 0.1]
    ];
    let t = array![
        [1.0f32, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0]
    ];
    assert_eq!(accuracy(p.view(), t.view()), 0.5);
    assert_eq!(
        confusion(p.view(), t.view()),
        vec![vec![1, 0, 0], vec![0, 1, 1], vec![1, 0, 0]]
    );
}

#[test]
fn per_label_means_skip_undefined() {
    let p = array![[0.9f64, 0.1], [0.2, 0.8], [0.8, 0.3]];
    let t = array![[1.0f64, 0.0], [0.0, 0.0], [1.0, 0.0]];
    let (roc, pr) = per_label_auc(p.view(), t.view());
    assert_eq!(roc, vec![Some(1.0), None]);
    assert_eq!(pr, vec![Some(1.0), None]);
    assert_eq!(mean_defined(&roc), 1.0);
}
