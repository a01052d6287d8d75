"""The library side of tools/train.py and tools/test.py (the tools only call :func:`train.main` /
:func:`test.main`): config reading and ``--cfg-options`` propagation, info-file checks, CPU distributed launch."""
from .config_options import add_load_report_hook, default_work_dir, import_plugins, load_config, merge_cfg_options
from .data_files import check_data_files
from .launcher import close_process_group, init_cpu_distributed, setup_launcher

__all__ = ['add_load_report_hook', 'default_work_dir', 'import_plugins', 'load_config', 'merge_cfg_options',
           'check_data_files', 'close_process_group', 'init_cpu_distributed', 'setup_launcher']
