"""The field's published architectures, key for key: Cohen et al.'s CIFAR ResNets and torchvision's ResNet-50, without torchvision.

Cohen, Rosenfeld & Kolter (2019) trained and released smoothed classifiers as
``Sequential(NormalizeLayer, net)`` (locuslab/smoothing, ``code/architectures.py``):
the dataset's normalisation first, so that the noise is added in pixel space and
radii are in the units of the ``[0, 1]`` image.  ``net`` is the CIFAR ResNet of
``code/archs/cifar_resnet.py`` (depth 20 or 110) or torchvision's ResNet-50,
wrapped in ``DataParallel`` for ImageNet.  Their ``train.py`` saves
``{"epoch", "arch", "state_dict", "optimizer"}``, so the keys read
``1.layer1.0.conv1.weight`` (CIFAR) or ``1.module.layer1.0.conv1.weight``
(ImageNet).  SmoothAdv, MACER and Consistency release checkpoints from the same
code.  The classes here have the same module names and shapes, so those files
load as they are (:func:`renyicert.workflow.published.load_published_checkpoint`);
:class:`NormalizeLayer` keeps its means and standard deviations as
non-persistent buffers, as the original keeps them out of the state dict.
"""

from __future__ import annotations

from typing import Any

from .._torch import torch_nn

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PUBLISHED_ARCHITECTURES",
    "CohenCifarResNet",
    "NormalizeLayer",
    "TorchvisionResNet50",
    "published_model",
]

#: The channel means and standard deviations of Cohen et al.'s ``code/datasets.py``.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class NormalizeLayer(torch_nn().Module):  # type: ignore[misc]
    """``(x - mean) / sd`` per channel of ``(B, C, H, W)`` images; the constants are buffers that are not saved (as in the original).

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.zoo import NormalizeLayer
    >>> layer = NormalizeLayer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    >>> layer(torch.full((1, 3, 2, 2), 0.75))[0, :, 0, 0].tolist(), list(layer.state_dict())
    ([1.0, 1.0, 1.0], [])
    """

    def __init__(self, means: tuple[float, ...], sds: tuple[float, ...]) -> None:
        import torch

        super().__init__()
        self.register_buffer("means", torch.tensor(means).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("sds", torch.tensor(sds).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Any) -> Any:
        return (x - self.means) / self.sds


class _CifarBlock(torch_nn().Module):  # type: ignore[misc]
    """The basic block of Cohen et al.'s CIFAR ResNet: ``conv1, bn1, relu, conv2, bn2`` and a ``downsample`` where the shape changes."""

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        nn = torch_nn()
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = (
            nn.Sequential(nn.Conv2d(inputs, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
            if stride != 1 or inputs != width
            else None
        )

    def forward(self, x: Any) -> Any:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class CohenCifarResNet(torch_nn().Module):  # type: ignore[misc]
    """The CIFAR ResNet of Cohen et al.'s ``code/archs/cifar_resnet.py`` (basic blocks, depth 6n + 2), with its module names.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.zoo import CohenCifarResNet
    >>> net = CohenCifarResNet(depth=20).eval()
    >>> net(torch.zeros(2, 3, 32, 32)).shape, sum(p.numel() for p in net.parameters())
    (torch.Size([2, 10]), 272474)
    """

    def __init__(self, depth: int = 110, num_classes: int = 10) -> None:
        nn = torch_nn()
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 56, 110), got {depth!r}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        stages, inputs = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            stages.append(
                nn.Sequential(
                    *[_CifarBlock(inputs if b == 0 else width, width, stride if b == 0 else 1) for b in range(blocks)]
                )
            )
            inputs = width
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Any) -> Any:
        x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
        return self.fc(self.avgpool(x).flatten(1))


class _Bottleneck(torch_nn().Module):  # type: ignore[misc]
    """torchvision's ResNet bottleneck (stride on the 3x3 convolution): ``conv1..3, bn1..3, relu, downsample``."""

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        nn = torch_nn()
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(inputs, width * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(width * 4))
            if stride != 1 or inputs != width * 4
            else None
        )

    def forward(self, x: Any) -> Any:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchvisionResNet50(torch_nn().Module):  # type: ignore[misc]
    """ResNet-50 with torchvision's module names (``conv1, bn1, relu, maxpool, layer1..4, avgpool, fc``), so its weights load as they are.

    Examples
    --------
    >>> from renyicert.workflow.zoo import TorchvisionResNet50
    >>> sum(p.numel() for p in TorchvisionResNet50().parameters())
    25557032
    """

    def __init__(self, num_classes: int = 1000) -> None:
        nn = torch_nn()
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages, inputs = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stages.append(
                nn.Sequential(
                    *[
                        _Bottleneck(inputs if b == 0 else width * 4, width, stride if b == 0 else 1)
                        for b in range(blocks)
                    ]
                )
            )
            inputs = width * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: Any) -> Any:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


#: Cohen et al.'s ``arch`` names: ``(dataset, input shape, classes, the network's factory)``.
PUBLISHED_ARCHITECTURES: dict[str, tuple[str, tuple[int, int, int], int, Any]] = {
    "cifar_resnet20": ("cifar10", (3, 32, 32), 10, lambda: CohenCifarResNet(20, 10)),
    "cifar_resnet110": ("cifar10", (3, 32, 32), 10, lambda: CohenCifarResNet(110, 10)),
    "resnet50": ("imagenet", (3, 224, 224), 1000, lambda: TorchvisionResNet50(1000)),
}


def published_model(arch: str) -> Any:
    """``Sequential(NormalizeLayer, net)`` for one of :data:`PUBLISHED_ARCHITECTURES`, as Cohen et al.'s ``get_architecture`` builds it."""
    if arch not in PUBLISHED_ARCHITECTURES:
        raise ValueError(f"unknown published architecture {arch!r}; expected one of {sorted(PUBLISHED_ARCHITECTURES)}")
    dataset, _, _, factory = PUBLISHED_ARCHITECTURES[arch]
    means, sds = (CIFAR10_MEAN, CIFAR10_STD) if dataset == "cifar10" else (IMAGENET_MEAN, IMAGENET_STD)
    return torch_nn().Sequential(NormalizeLayer(means, sds), factory())
