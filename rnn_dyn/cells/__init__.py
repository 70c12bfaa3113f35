"""Population cells by name: ``get_cell('gru')`` returns the class."""
from rnn_dyn._checks import check_choice
from rnn_dyn.cells.base import PopulationCell
from rnn_dyn.cells.gru import GRUCell
from rnn_dyn.cells.lstm import LSTMCell
from rnn_dyn.cells.ugrnn import UGRNNCell
from rnn_dyn.cells.vanilla import VanillaCell
from rnn_dyn.config import CELLS

CELL_CLASSES = {"vanilla": VanillaCell, "ugrnn": UGRNNCell, "gru": GRUCell, "lstm": LSTMCell}


def get_cell(name: str) -> type:
    """The cell class registered under ``name`` (one of ``CELLS``)."""
    check_choice("cell", name, CELLS)
    return CELL_CLASSES[name]


__all__ = ["PopulationCell", "VanillaCell", "UGRNNCell", "GRUCell", "LSTMCell", "get_cell"]
