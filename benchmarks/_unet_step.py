"""The unet3d-sized training step two benchmarks time in fresh subprocesses (source text).

``TRAIN_STEPS`` expects ``threads`` and ``steps`` to be defined; it leaves ``net`` and
``times`` (seconds per step, the warm-up step first): batch 4 of 48^3 patches, a 16-32-64
MONAI U-Net, seven classes, AdamW, seed 0.
"""

TRAIN_STEPS = r"""
import time
import torch
from monai.networks.nets import UNet
torch.set_num_threads(threads)
torch.manual_seed(0)
net = UNet(spatial_dims=3, in_channels=1, out_channels=7, channels=(16, 32, 64),
           strides=(2, 2), num_res_units=1)
opt = torch.optim.AdamW(net.parameters(), 1e-3)
x = torch.randn(4, 1, 48, 48, 48)
y = torch.randint(0, 7, (4, 48, 48, 48))
times = []
for _ in range(steps + 1):
    t = time.perf_counter()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    times.append(time.perf_counter() - t)
"""
