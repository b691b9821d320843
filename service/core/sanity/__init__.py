"""Sanity checks of saliency methods (Adebayo et al. 2018): do a method's maps depend on what the model learnt?

Protocol-neutral, like the rest of service/core: the v1 route (service/api/v1/sanity.py) turns its results into JSON.
"""

from .check import Checked, MethodCheck, sanity

__all__ = ["Checked", "MethodCheck", "sanity"]
