"""The study demo runs with the two-stream backbone and its figures reach the report."""

import base64
import json
import re

from thyronet.datasets import make_ptmc_cohort
from thyronet.study import StudyConfig, run_study


def test_study_demo_with_twostream_backbone(tmp_path):
    cohort = make_ptmc_cohort(n_patients=60, image_size=64, random_state=1)
    config = StudyConfig.demo(backbone="twostream_test_resnet", image_size=64, max_epochs=1,
                              batch_size=16, pca_components=4, lasso_cv=3,
                              gradcam_patients=2, shap_max_samples=20, verbose=0,
                              device="cpu", early_stopping_on="validation")  # 34 train patients
    results = run_study(cohort, config, tmp_path)

    # the CNN models really use the plugin's network
    cnn = results.models["dl_f"].named_steps["cnn"]
    assert type(cnn.net_.module_.model).__module__.startswith("thyronet_twostream")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for model in ("dl_l", "dl_c", "dl_f", "combined", "clinical"):
        assert 0.0 <= metrics[model]["test"]["auc"] <= 1.0

    html = (tmp_path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 5
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert "twostream_test_resnet" in html
    assert list((tmp_path / "figures").glob("gradcam*.png"))
