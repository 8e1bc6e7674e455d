# An MNIST-style script: a small CNN on 1x12x12 "digits" (class-dependent stroke patterns plus noise), a
# TensorDataset and DataLoader, Adadelta with StepLR, train/test loops in the style of PyTorch's example.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.conv2 = nn.Conv2d(4, 8, 3, 1)
        self.dropout1 = nn.Dropout(0.0)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def make_data(rng, n):
    labels = rng.integers(0, 4, n)
    images = rng.normal(0.0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    for i, c in enumerate(labels):                       # class c: a bright row, column or diagonal
        if c == 0:
            images[i, 0, 6, :] += 2.0
        elif c == 1:
            images[i, 0, :, 6] += 2.0
        elif c == 2:
            images[i, 0, np.arange(12), np.arange(12)] += 2.0
        else:
            images[i, 0, np.arange(12), 11 - np.arange(12)] += 2.0
    return images, labels.astype(np.int64)


def train(model, device, train_loader, optimizer, epoch):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % 5 == 0:
            seen = batch_idx * len(data)
            print(f"Train Epoch: {epoch} [{seen}/{len(train_loader.dataset)}]\tLoss: {loss.item():.6f}")
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)}")
    return test_loss, correct


def main():
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 192)
    x_test, y_test = make_data(rng, 64)
    train_kwargs = {"batch_size": 32}
    test_kwargs = {"batch_size": 64}
    if use_cuda:
        train_kwargs.update({"num_workers": 1, "pin_memory": True})
    train_loader = DataLoader(TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train)), **train_kwargs)
    test_loader = DataLoader(TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test)), **test_kwargs)
    model = Net().to(device)
    with torch.no_grad():                                 # the same starting weights in any framework
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, tuple(p.shape)).astype(np.float32)))
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    history = []
    for epoch in range(1, 4):
        history += train(model, device, train_loader, optimizer, epoch)
        result = test(model, device, test_loader)
        scheduler.step()
    return {"train_losses": history, "test_loss": result[0], "correct": result[1],
            "lr": scheduler.get_last_lr()}
