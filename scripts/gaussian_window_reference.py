"""Closed-form Gaussian reference for the lag-1 SBTG estimator on datasets/dag2023.

Diagnostic, not part of the toolkit. On the neurons identified in all 7 worms it fits the
Gaussian window model U(z) = 1/2 z' L z with L = (Cov_train + (sigma^2 + ridge) I)^-1, which
is the exact DSM optimum for Gaussian data, leave-one-worm-out. It prints
- the held-out DSM loss per coordinate (compare with the per-fold `heldout_loss` in an sbtg
  run's summary.json; a standard normal score scores about 99 at sigma = 0.1);
- the Cook 2019 AUROC of the cross-fitted orthogonal statistic 2 L10 - mean(s1 s0') (the
  linear-Gaussian SBTG direct effect), for several ridges, next to lag-1 correlation on the
  same ordered pairs. Orientation: matrices are [target, source].

It also shows what filling a missing neuron with 0 (its mean) does on the default panel
(neurons in at least 4 of 7 worms): the Gaussian optimum fitted to zero-filled windows with
pairwise-complete moments (plus the smallest ridge that makes them positive definite) scores
no better than a standard normal score.

Run from the repository root: python3 scripts/gaussian_window_reference.py (numpy, scipy).
"""
import csv,glob,numpy as np
from scipy.stats import rankdata
files=sorted(glob.glob('datasets/dag2023/*.traces.csv'))
recs=[]
for f in files:
    d=list(csv.reader(open(f))); h=d[0][1:]; X=np.array([[float(v) for v in r[1:]] for r in d[1:]])
    recs.append(({n:i for i,n in enumerate(h) if not n.endswith('?')},X))
# neurons in all 7 worms, to avoid masking
common=sorted(set.intersection(*[set(m) for m,_ in recs]))
n=len(common)
W=[]
for m,X in recs:
    Y=X[:,[m[c] for c in common]]; Y=(Y-Y.mean(0))/Y.std(0)
    W.append(np.hstack([Y[:-1],Y[1:]]))
cook=set()
for r in csv.DictReader(open('datasets/connectomes/cook2019_herm_cell.csv')):
    if float(r['weight'])>0: cook.add((r['pre'],r['post']))
lab=np.array([[ (common[i],common[j]) in cook for i in range(n)] for j in range(n)])  # [target j, source i]
off=~np.eye(n,dtype=bool)
def auc(s):
    s=s[off]; l=lab[off]; r=rankdata(s); p=l.sum(); q=len(l)-p
    return (r[l].sum()-p*(p+1)/2)/(p*q)
sig=0.1
for ridge in [0.0,0.01,0.1,1.0]:
    losses=[]; mus=[]
    for k in range(7):
        tr=np.vstack([W[j] for j in range(7) if j!=k]); te=W[k]
        S=np.cov(tr.T)+(sig**2+ridge)*np.eye(2*n)
        L=np.linalg.inv(S)
        # held-out DSM loss per coordinate of score s(y)=-L y, y=z+sig*eps
        rng=np.random.default_rng(k); e=rng.standard_normal(te.shape); y=te+sig*e
        losses.append(np.mean((-y@L+e/sig)**2))
        s=-te@L  # held-out scores
        H=L[n:,:n]  # mixed derivative of U=1/2 z'Lz: d2U/dx1 dx0 = L10
        mus.append(2*H - (s[:,n:].T@s[:,:n])/len(te))
    mu=np.mean(mus,0)
    print(f"gaussian ridge {ridge}: heldout DSM loss {np.mean(losses):.2f} (per worm {np.round(losses,1)}); Cook AUROC |mu| {auc(np.abs(mu)):.3f}")
C=np.mean([ (w[:, :n].T@w[:, n:]/len(w)).T for w in W],0)  # [target, source]
print(f"n={n} neurons in all worms; lag-1 corr AUROC {auc(np.abs(C)):.3f}; standard-normal score loss {np.mean([np.mean((-(w+sig*np.random.default_rng(0).standard_normal(w.shape))+np.random.default_rng(0).standard_normal(w.shape)/sig)**2) for w in W]):.2f}")

# Zero-filled default panel: neurons in >= 4 worms, missing neurons set to 0 (their mean).
counts={}
for m,_ in recs:
    for c in m: counts[c]=counts.get(c,0)+1
panel=sorted(c for c,k in counts.items() if k>=4)
p=len(panel); Z=[]; M=[]
for m,X in recs:
    Y=np.zeros((len(X),p)); O=np.zeros((len(X),p))
    for a,c in enumerate(panel):
        if c in m:
            v=X[:,m[c]]; Y[:,a]=(v-v.mean())/v.std(); O[:,a]=1
    Z.append(np.hstack([Y[:-1],Y[1:]])); M.append(np.hstack([O[:-1],O[1:]]))
Z=np.vstack(Z); M=np.vstack(M)
C=(Z.T@Z)/np.maximum(M.T@M,1)
ridge=0.0
while np.linalg.eigvalsh(C+(sig**2+ridge)*np.eye(2*p)).min()<=0: ridge=1e-6 if ridge==0 else ridge*2
L=np.linalg.inv(C+(sig**2+ridge)*np.eye(2*p))
rng=np.random.default_rng(0); e=rng.standard_normal(Z.shape)*M; y=Z+sig*e
loss=np.sum(((-y@L+e/sig)*M)**2)/M.sum()
print(f"zero-filled panel of {p} neurons: ridge needed {ridge:.3g}, training DSM loss of the Gaussian optimum {loss:.2f} (standard normal score: about 99)")
