use candle_onnx::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType,
    tensor_shape_proto::Dimension, tensor_shape_proto::dimension, type_proto,
};
use prost::Message;

use super::*;
use crate::scorer::OutputKind;

fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: AttributeType::Float.into(),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float.into(),
        float_data: values.to_vec(),
        ..Default::default()
    }
}

/// `0.5 * x @ W^T + 2 * C` through the MatMul/Mul/Add rewrite equals
/// the arithmetic done by hand, and `output.index` picks its column.
#[test]
fn gemm_with_alpha_beta_and_transposed_b_is_rewritten_exactly() {
    let dim = |v: dimension::Value| Dimension {
        value: Some(v),
        ..Default::default()
    };
    let input = ValueInfoProto {
        name: "x".into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float.into(),
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(dimension::Value::DimParam("rows".into())),
                        dim(dimension::Value::DimValue(3)),
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let gemm = NodeProto {
        input: vec!["x".into(), "W".into(), "C".into()],
        output: vec!["y".into()],
        name: "gemm".into(),
        op_type: "Gemm".into(),
        attribute: vec![
            float_attr("alpha", 0.5),
            float_attr("beta", 2.0),
            AttributeProto {
                name: "transB".into(),
                i: 1,
                r#type: AttributeType::Int.into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let model = ModelProto {
        graph: Some(GraphProto {
            node: vec![gemm],
            initializer: vec![
                tensor("W", &[2, 3], &[1.0, 2.0, 3.0, -1.0, 0.5, 4.0]),
                tensor("C", &[2], &[0.25, -1.0]),
            ],
            input: vec![input],
            output: vec![ValueInfoProto {
                name: "y".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("gemm.onnx");
    std::fs::write(&path, model.encode_to_vec()).expect("write");
    let output = OutputSpec {
        name: "y".into(),
        kind: OutputKind::Probability,
        index: Some(1),
    };
    let net = OnnxNetwork::load(&path, 3, &output, &Device::Cpu).expect("load");
    assert!(
        !net.model
            .graph
            .iter()
            .flat_map(|g| &g.node)
            .any(|n| n.op_type == "Gemm"),
        "Gemm is rewritten"
    );
    let x = Tensor::new(&[[1f32, 0.0, 2.0], [-2.0, 4.0, 0.5]], &Device::Cpu).expect("x");
    let y = net
        .forward(&x)
        .expect("forward")
        .to_vec1::<f32>()
        .expect("y");
    // Column 1: W row [-1, 0.5, 4], C = -1, so 0.5 * x.w - 2.
    let want = [
        0.5 * (-1.0 + 0.0 + 8.0) - 2.0,
        0.5 * (2.0 + 2.0 + 2.0) - 2.0,
    ];
    assert_eq!(y, want);
}
