"Fixtures shared by the test modules."
import pytest, torch

@pytest.fixture(scope='module')
def one_thread():
    "Tiny convolutions: one thread beats two busy ones on a shared CPU (restored afterwards)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
