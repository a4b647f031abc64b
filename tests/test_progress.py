import io

from rich.console import Console

from compress.core.progress import progress_bar, step


def test_non_terminal_output_gets_a_line_every_tenth():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    with progress_bar(console, "fine-tune epoch 1/2", 20) as bar:
        for i in range(20):
            bar.update(bar.task_ids[0], advance=1, status=f"loss {1 / (i + 1):.3f}")
    lines = buffer.getvalue().rstrip().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("  fine-tune epoch 1/2: 2/20 loss 0.500")
    assert lines[-1].startswith("  fine-tune epoch 1/2: 20/20 loss 0.050")


def test_small_totals_print_each_step_once():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    with progress_bar(console, "latency cpu b1_s128", 3) as bar:
        for _ in range(3):
            step(bar)
    assert [line.split(":")[1].split()[0] for line in buffer.getvalue().strip().splitlines()] == ["1/3", "2/3", "3/3"]


def test_a_quiet_console_accepts_updates_and_prints_nothing():
    buffer = io.StringIO()
    console = Console(file=buffer, quiet=True)
    with progress_bar(console, "training", 5) as bar:
        for _ in range(5):
            bar.update(bar.task_ids[0], advance=1, status="loss 0.1")
            step(bar)
    assert buffer.getvalue() == ""
