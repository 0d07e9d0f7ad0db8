import numpy as np
import pytest

from caffe2keras.layers.psroi_pooling import PSROIPooling


def psroi_reference(features, rois, output_dim, group_size, spatial_scale):
    """daijifeng001/caffe-rfcn PSROIPoolingForward_cpu, one output at a time (float32 bins)."""
    f32 = np.float32
    _, _, height, width = features.shape
    out = np.zeros((len(rois), output_dim, group_size, group_size), np.float32)

    def c_round(v):
        return np.sign(v) * np.floor(np.abs(v) + 0.5)

    for n, roi in enumerate(rois.astype(np.float32)):
        start_w, start_h = f32(c_round(roi[1])) * f32(spatial_scale), f32(c_round(roi[2])) * f32(spatial_scale)
        end_w = f32(c_round(roi[3]) + 1) * f32(spatial_scale)
        end_h = f32(c_round(roi[4]) + 1) * f32(spatial_scale)
        bin_h = max(end_h - start_h, f32(0.1)) / f32(group_size)
        bin_w = max(end_w - start_w, f32(0.1)) / f32(group_size)
        for d in range(output_dim):
            for i in range(group_size):
                for j in range(group_size):
                    h0 = min(max(int(np.floor(f32(i) * bin_h + start_h)), 0), height)
                    h1 = min(max(int(np.ceil(f32(i + 1) * bin_h + start_h)), 0), height)
                    w0 = min(max(int(np.floor(f32(j) * bin_w + start_w)), 0), width)
                    w1 = min(max(int(np.ceil(f32(j + 1) * bin_w + start_w)), 0), width)
                    if h1 <= h0 or w1 <= w0:
                        continue
                    channel = (d * group_size + i) * group_size + j
                    out[n, d, i, j] = features[int(roi[0]), channel, h0:h1, w0:w1].mean(dtype=np.float64)
    return out


ROIS = np.array(
    [
        [0, 0, 0, 15, 11],
        [1, 2.4, 3.5, 9.6, 7.5],  # halves round away from zero
        [0, 5, 5, 5, 5],  # a one-pixel ROI
        [1, -3, 1, 20, 30],  # past the map: clipped bins, some empty
        [0, 12, 9, 3, 2],  # reversed corners: the 0.1 minimum span
    ],
    np.float32,
)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("output_dim, group_size, scale", [(2, 3, 0.5), (3, 2, 0.25), (1, 1, 1.0)])
def test_matches_the_forks_loop(output_dim, group_size, scale, data_format, reloaded_outputs):
    features = np.random.default_rng(group_size).standard_normal((2, output_dim * group_size**2, 6, 8))
    features = features.astype(np.float32)
    layer = PSROIPooling(output_dim, group_size, scale, data_format=data_format)
    fed = features if data_format == "channels_first" else features.transpose(0, 2, 3, 1)
    actual = reloaded_outputs(layer, fed, ROIS)
    if data_format == "channels_last":
        actual = actual.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(actual, psroi_reference(features, ROIS, output_dim, group_size, scale), atol=1e-6)


def test_config_round_trip(config_round_trip):
    config_round_trip(PSROIPooling(21, 7, 0.0625, data_format="channels_first"))


@pytest.mark.parametrize("kwargs", [dict(output_dim=0, group_size=3), dict(output_dim=2, group_size=0)])
def test_refuses_non_positive_sizes(kwargs):
    with pytest.raises(ValueError, match="Received: output_dim"):
        PSROIPooling(**kwargs)
