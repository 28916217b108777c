"""The model canvas: a node editor on QGraphicsScene over :class:`workbench.gui.document.ProjectDocument`."""

from workbench.gui.canvas.scene import GraphScene, problem_node_ids, problems_mentioning
from workbench.gui.canvas.view import GraphView

__all__ = ["GraphScene", "GraphView", "problem_node_ids", "problems_mentioning"]
