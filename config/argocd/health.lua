-- Argo CD health check for every skiff kind (*.skiff.dev/v1alpha1).
-- skiff's controllers follow the kstatus conventions: status.observedGeneration,
-- a summarising Ready condition, Reconciling=True while they work and
-- Stalled=True when they cannot go on. argocd-cm.yaml installs this script
-- for each kind; `make manifests` regenerates it from this file.
local hs = {}
local kind = obj.kind
local spec = obj.spec or {}
local status = obj.status

local function condition(conds, t)
  for _, c in ipairs(conds or {}) do
    if c.type == t then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c == nil then
    return fallback
  end
  local m = c.message
  if m == nil or m == "" then
    m = c.reason or fallback
  end
  return m
end

-- Objects no controller reports on are healthy as they are.
if kind == "StorageClass" then
  hs.status = "Healthy"
  hs.message = "StorageClass is configuration"
  return hs
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report status"
  return hs
end

local gen = obj.metadata and obj.metadata.generation
if gen ~= nil and status.observedGeneration ~= nil and status.observedGeneration < gen then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. gen
  return hs
end

local ready = condition(status.conditions, "Ready")
local reconciling = condition(status.conditions, "Reconciling")
local stalled = condition(status.conditions, "Stalled")

-- What the user suspended is neither healthy nor failing.
if (kind == "CronJob" or kind == "Job") and spec.suspend == true then
  hs.status = "Suspended"
  hs.message = text(ready, kind .. " is suspended")
  return hs
end
if kind == "Deployment" and spec.paused == true then
  hs.status = "Suspended"
  hs.message = "Deployment is paused"
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end
-- Finished without being Ready: a completed pod.
if kind == "Pod" and status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Pod completed"
  return hs
end
if ready ~= nil then
  hs.status = "Progressing"
  hs.message = text(ready, "Not ready")
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for the controller to report the Ready condition"
return hs
