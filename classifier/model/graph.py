"""Graph surgery on a backbone: where it can be cut in two (a single tensor links the
parts), its blocks, which of them train, and the two halves of a cut.
"""

import re

import keras

from classifier.errors import UserError
from classifier.model.registry import BACKBONES
from classifier.params import PARAMS_FILE


def backbone_of(extractor):
    """The backbone inside an extractor."""
    return next(layer for layer in extractor.layers if isinstance(layer, keras.Model))


def cut_points(network):
    """Indices in network.operations after which the rest of the network sees
    the earlier operations only through that one's output."""
    index = {id(op): i for i, op in enumerate(network.operations)}
    reach = list(range(len(index)))  # the last operation that reads each one's output
    for j, op in enumerate(network.operations):
        for node in op._inbound_nodes:
            for tensor in node.input_tensors:
                i = index[id(tensor._keras_history.operation)]
                reach[i] = max(reach[i], j)
    cuts, furthest = [], -1
    for k in range(len(reach)):
        if furthest <= k:
            cuts.append(k)
        furthest = max(furthest, reach[k])
    return cuts


def block_starts(network, block_end):
    """Index of the first operation of each block, bottom to top. A block ends at
    the first cut point at or after a layer named by the `block_end` pattern; the
    layers after the last block end belong to the top block."""
    cuts = cut_points(network)
    ends = {next(c for c in cuts if c >= i) for i, op in enumerate(network.operations)
            if re.fullmatch(block_end, op.name)}
    return [1] + sorted(end + 1 for end in ends)[:-1]


def unfreeze(network, backbone, blocks):
    """Make the top `blocks` blocks of the named backbone's network trainable
    (BatchNormalization stays frozen). Returns the first trainable layer's name."""
    starts = block_starts(network, BACKBONES[backbone].block_end)
    if blocks > len(starts):
        raise UserError(
            f"{PARAMS_FILE}: finetune.unfreeze = {blocks} blocks, but {backbone} has {len(starts)}"
        )
    first = starts[-blocks] if blocks else len(network.operations)
    top = {id(op) for op in network.operations[first:]}
    network.trainable = True
    for layer in network.layers:
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in top and not is_norm
    return network.operations[first].name if blocks else None


def cut(extractor, first):
    """(bottom, top) of an extractor whose backbone trains from the layer named
    `first` up. bottom: pixels -> the activation just below `first`, all frozen,
    so it can be computed once per image; top: that activation -> the features.
    Both share the extractor's layers."""
    backbone = backbone_of(extractor)
    position = [op.name for op in backbone.operations].index(first)
    cut = backbone.operations[position - 1].output
    where = extractor.layers.index(backbone)
    bottom = keras.Sequential(
        [keras.Input(extractor.input_shape[1:], name="image"), *extractor.layers[:where], keras.Model(backbone.input, cut)],
        name="bottom",
    )
    top = keras.Sequential(
        [keras.Input(cut.shape[1:], name="cut"), keras.Model(cut, backbone.output), *extractor.layers[where + 1 :]],
        name="top",
    )
    return bottom, top
