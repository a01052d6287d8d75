"""The generator's scene list: every other scene a val scene by default, or a given number of val scenes."""
import pytest
from nuscenes.utils import splits

from clap_plugin.synthetic import GeneratorConfig, SyntheticDataError, scene_names


def test_default_alternates_train_and_val_as_before():
    names = scene_names('v1.0-trainval', 7)
    assert names == [splits.train[0], splits.val[0], splits.train[1], splits.val[1], splits.train[2],
                     splits.val[2], splits.train[3]]
    assert scene_names('v1.0-mini', 2) == ['scene-0061', 'scene-0103']


@pytest.mark.parametrize('version,train_pool,val_pool', [('v1.0-trainval', splits.train, splits.val),
                                                         ('v1.0-mini', splits.mini_train, splits.mini_val)])
def test_val_scenes_sets_the_split_sizes(version, train_pool, val_pool):
    names = scene_names(version, 6, val_scenes=2)
    assert len(names) == len(set(names)) == 6
    assert sum(n in val_pool for n in names) == 2 and sum(n in train_pool for n in names) == 4
    assert names[:4] == [train_pool[0], val_pool[0], train_pool[1], val_pool[1]]  # alternating while both last
    big = scene_names('v1.0-trainval', 60, val_scenes=20)
    assert sum(n in splits.val for n in big) == 20 and sum(n in splits.train for n in big) == 40


def test_val_scenes_errors_name_the_option(tmp_path):
    with pytest.raises(SyntheticDataError, match='--val-scenes'):
        scene_names('v1.0-trainval', 4, val_scenes=5)
    with pytest.raises(SyntheticDataError, match='--val-scenes'):
        scene_names('v1.0-mini', 6, val_scenes=3)  # the mini split has 2 val scenes
    with pytest.raises(SyntheticDataError, match='--val-scenes'):
        GeneratorConfig(root=str(tmp_path / 'x'), version='v1.0-mini', num_scenes=3, val_scenes=-1).validate()
