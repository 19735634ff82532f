namespace Microsoft.ML.DeepDensity.Persistence;

/// <summary>The model kinds this assembly can load. Adding a model is one line here.</summary>
internal static class BuiltInModels
{
    internal static void RegisterAll()
    {
        ModelRegistry.Register(Models.Rnade.RnadeModel.Kind, Models.Rnade.RnadeModel.ReadPayload);
        ModelRegistry.Register(Models.Rnade.DeepRnadeModel.Kind, Models.Rnade.DeepRnadeModel.ReadPayload);
        ModelRegistry.Register(Models.Rbm.RbmModel.Kind, Models.Rbm.RbmModel.ReadPayload);
        ModelRegistry.Register(Models.DeepGmm.DeepGmmModel.Kind, Models.DeepGmm.DeepGmmModel.ReadPayload);
        ModelRegistry.Register(Models.Iwae.IwaeModel.Kind, Models.Iwae.IwaeModel.ReadPayload);
        ModelRegistry.Register(Models.Nvil.NvilModel.Kind, Models.Nvil.NvilModel.ReadPayload);
        ModelRegistry.Register(Models.RnnRnade.RnnRnadeModel.Kind, Models.RnnRnade.RnnRnadeModel.ReadPayload);
    }
}
